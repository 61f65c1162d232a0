# Sourced by the CPU-scale measurement scripts: train NAME [KEY=VALUE ...] trains one quickstart-sized
# model (cifar10-mini, cifar_resnet10, 5 epochs, PGD-3 in training) into $OUT/NAME with the given
# --set overrides, unless it is there already. Needs OUT and NOFROST set.
train() {
  local name=$1; shift
  if [ -f "$OUT/$name/model.json" ]; then echo "== $name: done already"; return; fi
  local sets=(); for o in "$@"; do sets+=(--set "$o"); done
  echo "== $name"
  /usr/bin/time -f "$name: %e s wall" $NOFROST train --preset quickstart "${sets[@]}" --out "$OUT/$name" --quiet
}
