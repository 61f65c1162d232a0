#!/usr/bin/env bash
# The CPU-scale measurements of docs/analysis.md: five quickstart-sized models (cifar10-mini,
# cifar_resnet10, 5 epochs, PGD-3 in training), then `nofrost analyze` on them.
#   bash scripts/analysis_cpu.sh [OUT]        (default OUT: ./analysis-cpu)
set -euo pipefail
OUT=${1:-analysis-cpu}
NOFROST=${NOFROST:-nofrost}
mkdir -p "$OUT"
. "$(dirname "$0")/_train_quickstart_sized.sh"
train sat-bn      model.norm=bn   method.name=sat
train nofrost-nf  model.norm=none method.name=sat
train mbnat-mbn   model.norm=mbn  method.name=mbnat
train st-bn       model.norm=bn   method.name=st   method.lam=0.0
train pgdat-bn    model.norm=bn   method.name=pgdat
# Table 5 / Figure 6: the three properties of SAT (BN), MBNAT and NoFrost on 500 test images.
/usr/bin/time -f "analyze properties: %e s wall" $NOFROST analyze "$OUT/sat-bn" "$OUT/mbnat-mbn" "$OUT/nofrost-nf" \
  --n 500 --metrics margin,thickness,smoothness --out "$OUT/properties" --quiet
# Figure 1 and the per-layer statistics: ST vs PGD-AT (BN), and SAT (BN) vs NoFrost (NF).
/usr/bin/time -f "analyze bn-stats (st, pgdat): %e s wall" $NOFROST analyze "$OUT/st-bn" "$OUT/pgdat-bn" \
  --n 500 --bn-stats --layer 5 --out "$OUT/bn-st-vs-pgdat" --quiet
/usr/bin/time -f "analyze bn-stats (sat, nofrost): %e s wall" $NOFROST analyze "$OUT/sat-bn" "$OUT/nofrost-nf" \
  --n 500 --bn-stats --layer 5 --out "$OUT/bn-sat-vs-nofrost" --quiet
