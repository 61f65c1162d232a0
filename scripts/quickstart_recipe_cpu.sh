#!/usr/bin/env bash
# The measurements behind the quickstart's recipe (docs/scaling.md, "the quickstart on CPU"): the
# NF arm of the quickstart as it was before (batch 128, crops and flips), with bf16 on CPU, and one
# change at a time, each run's clean accuracy on 1,000 test images after every epoch.
#   bash scripts/quickstart_recipe_cpu.sh [OUT]     (default OUT: ./quickstart-recipe; two runs at a time, 1 thread each)
set -euo pipefail
OUT=${1:-quickstart-recipe}
NOFROST=${NOFROST:-nofrost}
mkdir -p "$OUT"
run() {
  local name=$1; shift
  local sets=(); for o in model.norm=none optim.batch_size=128 data.augment=true runtime.cpu_bf16=true \
    data.eval_n=1000 "$@"; do sets+=(--set "$o"); done
  [ -f "$OUT/$name/model.json" ] || OMP_NUM_THREADS=1 $NOFROST train --preset quickstart "${sets[@]}" \
    --out "$OUT/$name" --quiet > "$OUT/$name.log" 2>&1
}
pair() { run "$1" ${2:+$2} & run "$3" ${4:+$4}; wait; }
pair before "" lr0.2 "optim.lr=0.2"
pair batch64 "optim.batch_size=64" pgd2 "attack.steps=2"
pair batch64-pgd2 "optim.batch_size=64 attack.steps=2" epochs8 "optim.epochs=8"
pair width32 "model.width=32" no-aug "data.augment=false"
pair no-aug-batch64 "data.augment=false optim.batch_size=64" no-aug-lr0.2 "data.augment=false optim.lr=0.2"
python3 - "$OUT" <<'PY'
import json, pathlib, sys
for run in sorted(pathlib.Path(sys.argv[1]).glob("*/metrics.jsonl")):
    epochs = [json.loads(line) for line in run.read_text().splitlines()]
    print(f"{run.parent.name:16s} clean % per epoch: {[round(100 * e['eval_clean_acc'], 1) for e in epochs]}")
PY
