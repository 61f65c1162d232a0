#!/usr/bin/env bash
# The CPU-scale distribution-shift measurements of docs/ood.md and docs/methods.md: quickstart-sized
# models (cifar10-mini, cifar_resnet10, 5 epochs, PGD-3 in training) evaluated on the generated
# CIFAR-10-C (all 19 corruptions x 5 severities of the 2,000 cifar10-mini test images).
#   bash scripts/ood_cpu.sh [OUT]     (default OUT: ./analysis-cpu, shared with scripts/analysis_cpu.sh)
# Frost needs its textures: NOFROST_FROST_DIR=<folder with frost1.png ... frost6.jpg>.
set -euo pipefail
OUT=${1:-analysis-cpu}
NOFROST=${NOFROST:-nofrost}
mkdir -p "$OUT"
. "$(dirname "$0")/_train_quickstart_sized.sh"
train st-bn           model.norm=bn   method.name=st   method.lam=0.0
train sat-bn          model.norm=bn   method.name=sat
train nofrost-nf      model.norm=none method.name=sat
train nofrost-star-nf model.norm=none method.name=nofrost-star method.lam=null
train combine-bn      model.norm=bn   method.name=combine      method.lam=null
for name in st-bn sat-bn nofrost-nf nofrost-star-nf combine-bn; do
  if [ -f "$OUT/$name/eval-cifar10-c-gen.json" ]; then echo "== $name on cifar10-c-gen: done already"; continue; fi
  /usr/bin/time -f "$name on cifar10-c-gen: %e s wall" \
    $NOFROST evaluate "$OUT/$name" --data cifar10-c-gen --corruptions all --quiet
done
$NOFROST report "$OUT/st-bn" "$OUT/sat-bn" "$OUT/nofrost-nf" "$OUT/nofrost-star-nf" "$OUT/combine-bn" \
  -o "$OUT/ood-report.html"
