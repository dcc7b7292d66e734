#!/usr/bin/env bash
# The PPO grid of README "Multi-agent PPO on comp_env": {medium, large} x {multi, central} x seeds 1-5,
# JOBS runs at a time under nice, one torch thread each; every finished run's summary.json is copied to
# results_comp/{scenario}-{mode}-{seed}.json (runs with such a file are skipped, so a rerun resumes).
#   benchmarks/ppo_comp_grid.sh [MEDIUM_STEPS [LARGE_STEPS]]     # defaults 500000 500000; env: JOBS, PYTHON
set -euo pipefail
cd "$(dirname "$0")/.."
export MEDIUM_STEPS=${1:-500000} LARGE_STEPS=${2:-500000} PYTHON=${PYTHON:-python}
mkdir -p results_comp runs/ppo_comp
for scenario in medium large; do for mode in multi central; do for seed in 1 2 3 4 5; do
  [ -e "results_comp/$scenario-$mode-$seed.json" ] || echo "$scenario $mode $seed"
done; done; done | xargs -P "${JOBS:-2}" -L 1 sh -c '
  steps=$MEDIUM_STEPS; [ "$0" = large ] && steps=$LARGE_STEPS
  load=""; [ "$1" = multi ] && load="--eval-load-factors 1 2 4"
  dir=runs/ppo_comp/$0-$1-$2
  nice -n 10 "$PYTHON" ppo_comp.py --scenario "$0" --mode "$1" --seed "$2" --total-timesteps "$steps" \
    --eval-interval $((steps / 20)) --torch-threads 1 $load --run-dir "$dir" > "$dir.log" 2>&1 &&
  cp "$dir/summary.json" "results_comp/$0-$1-$2.json" && echo "done $0 $1 $2 $(date +%T)"'
