#!/usr/bin/env bash
# The main job end to end on an embedded dataset: prepare it, run every registered imputer on
# the same masked replicates, score, and write the report. Re-running resumes the run named
# "demo" (nothing finished is recomputed), so a second call is quick.
set -euo pipefail
dataset=${1:-sim-1kgp}
imputers=${2:-}
scheme=${3:-}
bin=.venv/bin
run_dir="results/$dataset/demo"
args=(run --dataset "$dataset" --run demo --out results)
[ -n "$imputers" ] && args+=(--imputers "$imputers")
[ -n "$scheme" ] && args+=(--scheme "$scheme")
"$bin/impbench" "${args[@]}"
"$bin/impbench" report "$run_dir"
