# Sourced by the CPU-scale measurement scripts: train NAME [KEY=VALUE ...] trains one quickstart-sized
# model (cifar10-mini, cifar_resnet10 of width 16, 5 epochs, batch 128, crops and flips, PGD-3 in
# training, fp32: the quickstart's recipe before issue 16) into $OUT/NAME with the given --set
# overrides, unless it is there already. Needs OUT and NOFROST set. The recipe is pinned here, so
# that the measured runs stay comparable when the quickstart preset changes.
train() {
  local name=$1; shift
  if [ -f "$OUT/$name/model.json" ]; then echo "== $name: done already"; return; fi
  local sets=(); for o in model.name=cifar_resnet10 model.width=16 optim.epochs=5 optim.batch_size=128 \
    attack.steps=3 data.augment=true runtime.cpu_bf16=false "$@"; do sets+=(--set "$o"); done
  echo "== $name"
  /usr/bin/time -f "$name: %e s wall" $NOFROST train --preset quickstart "${sets[@]}" --out "$OUT/$name" --quiet
}
