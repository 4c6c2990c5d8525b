#!/usr/bin/env bash
# The main job end to end on an embedded dataset: prepare, run every imputer, report.
set -euo pipefail
dataset=${1:-sim-1kgp}
imputers=${2:-}
bin=.venv/bin
"$bin/impbench" prepare --dataset "$dataset"
