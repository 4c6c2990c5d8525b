#!/usr/bin/env bash
# GPU check of the neural imputers' CUDA path on sim-1kgp, with the project's Python (.venv).
#
# For each PRESET (default: biunet's cpu and paper) and precision (bf16, and fp16 with a
# gradient scaler = the archived run's amp=fp16-cuda), one impbench run trains BiU-Net on CUDA
# twice: single process, and under `torchrun --nproc-per-node 1` (one process in an NCCL
# process group: the DDP wrapper and every collective run; IMPBENCH_TORCHRUN_ALWAYS=1). Then it
# prints one table: preset, precision, launch, epochs, seconds per epoch, best validation R2,
# test R2 at 5/15/25 % (masked minor-allele dosage R2, standard protocol, from metrics.csv),
# read from each run's models/biunet/fit/<key>/train_summary.json and train_timing.csv.
#
#   bash benchmarks/gpu_check.sh
#   EPOCHS=50 PRESETS="paper" OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#
# Without CUDA it prints one line and exits with status 3. DEVICE=cpu runs the same steps on the
# CPU (gloo instead of NCCL; amp=fp16-cuda is full precision there): a dry run of the script,
# e.g. DEVICE=cpu EPOCHS=1 PRESETS=cpu bash benchmarks/gpu_check.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

EPOCHS=${EPOCHS:-100}
PRESETS=${PRESETS:-"cpu paper"}
OUT=${OUT:-results-gpu-check}
DATASET=${DATASET:-sim-1kgp}
PY=${PYTHON:-.venv/bin/python}
IMPBENCH=${IMPBENCH:-.venv/bin/impbench}
DEVICE=${DEVICE:-cuda}
if [[ ! -x "$PY" || ! -x "$IMPBENCH" ]]; then
    echo "gpu_check: $PY or $IMPBENCH missing; run 'make setup' first" >&2
    exit 2
fi
if [[ $DEVICE == cuda ]] && ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
    echo "gpu_check: no usable CUDA device ($("$PY" -c 'import torch; print(f"torch {torch.__version__}, CUDA build {torch.version.cuda}")' 2>/dev/null || echo 'torch not importable')); nothing checked" >&2
    exit 3
fi
[[ $DEVICE == cuda ]] && "$PY" -c 'import torch; print(f"gpu_check: {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}, NCCL {torch.cuda.nccl.version()}")'

runs=()
for preset in $PRESETS; do
    for amp in bf16 fp16-cuda; do
        for launch in single torchrun; do
            name="$preset-$amp-$launch"
            always=0; [[ $launch == torchrun ]] && always=1
            echo "=== $name: biunet preset=$preset amp=$amp epochs=$EPOCHS ($launch)"
            IMPBENCH_TORCHRUN_ALWAYS=$always "$IMPBENCH" run --dataset "$DATASET" --imputers biunet --levels 0.05,0.15,0.25 \
                --replicates 1 --device "$DEVICE" --out "$OUT" --run "$name" --no-progress \
                --opt "biunet.preset=$preset" --opt "biunet.epochs=$EPOCHS" --opt "biunet.amp=$amp" --opt biunet.train_seconds=0
            runs+=("$OUT/$DATASET/$name")
        done
    done
done

"$PY" benchmarks/gpu_check_table.py "${runs[@]}"
