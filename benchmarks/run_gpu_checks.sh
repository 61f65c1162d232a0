#!/usr/bin/env bash
# The device checks of issue 5, as one script for a lent GPU (see the device tool's README):
# training throughput (reference recipe vs our step, with ablations) and bf16-vs-fp32 attack
# strength. Results go to OUT (default benchmarks/results), named after the card.
#
#   bash benchmarks/run_gpu_checks.sh                 # on the GPU machine
#   DEVICE=cpu bash benchmarks/run_gpu_checks.sh /tmp/dry   # dry run of the same script here
set -euo pipefail
cd "$(dirname "$0")/.."
DEVICE=${DEVICE:-cuda}
OUT=${1:-benchmarks/results}
PY=${PYTHON:-python}
mkdir -p "$OUT"
CARD=$($PY -c "import torch, re; print(re.sub(r'[^A-Za-z0-9]+', '-', torch.cuda.get_device_name(0)).strip('-') if '$DEVICE' == 'cuda' else 'cpu-dry-run')")
$PY -c "import torch; print(torch.__version__, torch.cuda.is_available() and torch.cuda.get_device_name(0))"
if [ "$DEVICE" = cuda ]; then
  # The headline comparison first, so a time-out in the ablations (each compiled arm pays its
  # own compile warm-up) still leaves it written.
  $PY benchmarks/train_throughput.py --device cuda --rounds 3 --iters 5 --warmup 3 --out "$OUT/train_throughput_$CARD.md"
  $PY benchmarks/attack_precision.py --device cuda --n 1000 --out "$OUT/attack_precision_$CARD.md"
  $PY benchmarks/train_throughput.py --device cuda --ablate --rounds 2 --iters 3 --warmup 3 --out "$OUT/train_throughput_ablations_$CARD.md"
else
  $PY benchmarks/train_throughput.py --device cpu --steps 2 --rounds 1 --iters 1 --out "$OUT/train_throughput_$CARD.md"
  $PY benchmarks/attack_precision.py --device cpu --n 100 --out "$OUT/attack_precision_$CARD.md"
fi
