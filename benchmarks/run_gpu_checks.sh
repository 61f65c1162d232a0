#!/usr/bin/env bash
# The device checks, as one script for a lent GPU (see the device tool's README), in the order
# that leaves the most important result written if time runs out:
#   1. training throughput, reference recipe vs our step (issue 5);
#   2. NoFrost* and Combine train from their presets on the GPU, one short run each (issue 13);
#   3. a short SAT-BN vs NoFrost training on cifar10-mini with clean, PGD-20 and AutoAttack
#      results (issue 16);
#   4. bf16-vs-fp32 attack strength, AutoAttack against the official code and its floor
#      (issue 11), the throughput ablations, the augmentations' cost.
# Results go to OUT (default benchmarks/results), named after the card; the training runs (with
# their checkpoints) to RUNS (default $TMPDIR/nofrost-gpu-runs), outside OUT.
#
#   bash benchmarks/run_gpu_checks.sh                        # on the GPU machine
#   DEVICE=cpu bash benchmarks/run_gpu_checks.sh /tmp/dry    # dry run of the same steps here, tiny sizes
# Sizes: EPOCHS (default 10 on CUDA) for step 3; EVAL_N (default 500) test images per evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${1:-benchmarks/results}
PY=${PYTHON:-python}
mkdir -p "$OUT"
CARD=$($PY -c "import torch, re; print(re.sub(r'[^A-Za-z0-9]+', '-', torch.cuda.get_device_name(0)).strip('-') if '$DEVICE' == 'cuda' else 'cpu-dry-run')")
RUNS=${RUNS:-${TMPDIR:-/tmp}/nofrost-gpu-runs}
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
if [ "$DEVICE" = cuda ]; then
  EPOCHS=${EPOCHS:-10}; EVAL_N=${EVAL_N:-500}; SMALL=()
  $PY benchmarks/train_throughput.py --device cuda --rounds 3 --iters 5 --warmup 3 --out "$OUT/train_throughput_$CARD.md"
else
  # The dry run: the same commands on 256 training images of a width-8 network.
  EPOCHS=${EPOCHS:-1}; EVAL_N=${EVAL_N:-16}
  SMALL=(--set data.train_n=256 --set model.width=8 --set attack.steps=1 --set optim.batch_size=64)
  $PY benchmarks/train_throughput.py --device cpu --steps 2 --rounds 1 --iters 1 --out "$OUT/train_throughput_$CARD.md"
fi

# The CIFAR-10 presets on the shipped subset (the full set is not on a lent machine).
train() {  # train PRESET NAME EPOCHS [--set ...]
  local preset=$1 name=$2 epochs=$3; shift 3
  /usr/bin/time -f "$name: %e s wall" $PY -m nofrost train --preset "$preset" --set data.name=cifar10-mini \
    --set data.root=null --set optim.epochs="$epochs" --set runtime.device="$DEVICE" --set eval.n="$EVAL_N" \
    "${SMALL[@]}" "$@" --out "$RUNS/$name" --resume auto --quiet
}
train cifar10-nofrost-star nofrost-star 1
train cifar10-combine combine 1
train cifar10-sat sat-bn "$EPOCHS"
train cifar10-nofrost nofrost "$EPOCHS"
for name in sat-bn nofrost; do  # into RUN/eval.json, over the training's own PGD-20 evaluation
  $PY -m nofrost evaluate "$RUNS/$name" --data cifar10-mini --attacks clean,pgd,autoattack --n "$EVAL_N" \
    --device "$DEVICE" --quiet
done
$PY -m nofrost report "$RUNS/nofrost-star" "$RUNS/combine" "$RUNS/sat-bn" "$RUNS/nofrost" -o "$OUT/gpu_training_$CARD.md"

if [ "$DEVICE" = cuda ]; then
  $PY benchmarks/attack_precision.py --device cuda --n 1000 --out "$OUT/attack_precision_$CARD.md"
  $PY benchmarks/eval_throughput.py --device cuda --n 1000 --version both --out "$OUT/eval_throughput_$CARD.md"
  $PY benchmarks/attack_floor.py --device cuda --batch 200 --out "$OUT/attack_floor_$CARD.md"
  $PY benchmarks/train_throughput.py --device cuda --ablate --rounds 2 --iters 3 --warmup 3 --out "$OUT/train_throughput_ablations_$CARD.md"
  $PY benchmarks/augment_cost.py --device cuda --out "$OUT/augment_cost_$CARD.md"
else
  $PY benchmarks/attack_precision.py --device cpu --n 100 --out "$OUT/attack_precision_$CARD.md"
  $PY benchmarks/eval_throughput.py --device cpu --n 16 --version both --steps 2 --queries 20 --threads 1 \
    --out "$OUT/eval_throughput_$CARD.md"
  $PY benchmarks/attack_floor.py --device cpu --batch 4 --rounds 1 --iters 1 --out "$OUT/attack_floor_$CARD.md"
fi
