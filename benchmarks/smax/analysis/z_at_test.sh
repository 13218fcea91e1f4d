#!/usr/bin/env bash
# Issue 14, item 4: what the GIP teacher acts on at test time. Each finished campaign teacher is
# evaluated greedily on 256 episodes, acting on its sampled z (as in training and its tests) and on
# z = mu; the students (mode=decentralized) on the same seed for reference. Resumable: an existing
# result is kept. Usage: bash benchmarks/smax/analysis/z_at_test.sh [work_dir]
set -euo pipefail
cd "$(dirname "$0")/../../.."
WORK=${1:-outputs/benchmarks/smax}
OUT=benchmarks/smax/analysis/z_at_test
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
for run in "$WORK"/qmix_gip_*; do
  name=$(basename "$run")
  grep -qs '"status": "finished"' "$run/results.json" || continue
  for z in sampled mean student; do
    f="$OUT/${name}_$z.json"
    [ -s "$f" ] && continue
    if [ $z = student ]; then args="mode=decentralized"; src=eval_decentralized.json
    else args="mode=centralized z=$z"; src=eval_centralized$([ $z = mean ] && echo _z-mean || true).json; fi
    WANDB_MODE=offline $PY -m ptde.evaluate checkpoint="$run" episodes=256 batch_size=64 seed=4242 $args > /dev/null
    cp "$run/$src" "$f"
    echo "$name $z $(python3 -c "import json;r=json.load(open('$f'));print(r['eval/win_rate'], r['eval/win_rate_se'])")"
  done
done
