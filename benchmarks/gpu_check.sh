#!/usr/bin/env bash
# GPU check of BiU-Net's `paper` preset (the authors' archived 1000 Genomes run config) on sim-1kgp.
#
# Trains `paper` for EPOCHS (default 400) on CUDA four ways, each as its own impbench run:
#   fp16   single process   (fp16 autocast + gradient scaler: the archived config, amp=fp16-cuda)
#   bf16   single process   (amp=bf16)
#   fp16   torchrun NCCL    (--nproc NPROC, default: every visible GPU, at least 2 processes)
#   bf16   torchrun NCCL
# and prints, per run: segments/s (median over epochs, from train_metrics.csv), the validation
# curve (masked minor-allele dosage R2 per epoch, from the manifest's info), and the test-split
# masked dosage R2 at 5/15/25 % beside knn and Beagle (Beagle when its plugin and command exist).
#
#   bash benchmarks/gpu_check.sh                   # all four, 400 epochs
#   EPOCHS=20 OUT=/tmp/gpu bash benchmarks/gpu_check.sh
#
# Without CUDA it stops at once with exit status 3 and says so.
set -euo pipefail

EPOCHS=${EPOCHS:-400}
OUT=${OUT:-results-gpu-check}
DATASET=${DATASET:-sim-1kgp}
PY=${PYTHON:-python}
cd "$(dirname "$0")/.."

if ! "$PY" - <<'PYEOF'
import sys
try:
    import torch
except ImportError:
    print("gpu_check: torch is not installed", file=sys.stderr); sys.exit(1)
if not torch.cuda.is_available():
    build = "CPU-only build" if torch.version.cuda is None else f"CUDA {torch.version.cuda} build"
    print(f"gpu_check: no usable CUDA device (torch {torch.__version__}, {build}); this check needs a GPU", file=sys.stderr)
    sys.exit(1)
print(f"gpu_check: {torch.cuda.device_count()} x {torch.cuda.get_device_name(0)}, torch {torch.__version__}, CUDA {torch.version.cuda}, bf16 {torch.cuda.is_bf16_supported()}")
PYEOF
then
    exit 3
fi

NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())")
NPROC=${NPROC:-$(( NGPU > 1 ? NGPU : 2 ))}
if (( NPROC > NGPU )); then
    echo "gpu_check: torchrun with $NPROC processes needs $NPROC GPUs (NCCL: one GPU per process); $NGPU visible — the DDP runs are skipped" >&2
    NPROC=0
fi
OTHERS=knn
if "$PY" -c "from impbench.imputers.registry import get_imputers; import shutil, sys; sys.exit(0 if 'beagle' in get_imputers() and shutil.which('beagle') else 1)"; then
    OTHERS=knn,beagle
fi

run_one() {  # name amp nproc
    local name=$1 amp=$2 nproc=$3
    echo; echo "=== $name: paper preset, $EPOCHS epochs, amp=$amp, nproc=$nproc ==="
    local started=$SECONDS
    impbench run --dataset "$DATASET" --imputers "biunet,$OTHERS" --levels 0.05,0.15,0.25 --replicates 1 \
        --device cuda --nproc "$nproc" --out "$OUT" --run "$name" --no-progress \
        --opt biunet.preset=paper --opt "biunet.epochs=$EPOCHS" --opt "biunet.amp=$amp"
    echo "wall: $(( SECONDS - started )) s"
    "$PY" - "$OUT/$DATASET/$name" <<'PYEOF'
import csv, json, statistics, sys
from pathlib import Path
run = Path(sys.argv[1])
manifest = json.loads((run / "manifest.json").read_text())
info = manifest["imputers"]["biunet"].get("info", {})
rows = list(csv.DictReader(open(run / "models" / "biunet" / "train_metrics.csv")))
speeds = [float(r["segments_per_s"]) for r in rows if r["segments_per_s"]]
print(f"precision {info.get('precision')}, world size {info.get('world_size')}, params {info.get('params')}, "
      f"epochs run {info.get('epochs_run')}, stop reason {info.get('stop_reason')}, best epoch {info.get('best_epoch')}")
print(f"segments/s: median {statistics.median(speeds):,.0f} (per process x world size = all processes), "
      f"training {info.get('train_seconds')} s")
curve = info.get("validation_curve", [])
step = max(1, len(curve) // 40)
print("validation curve (epoch, train s, masked minor-allele dosage R2, concordance):")
for point in curve[::step] + ([curve[-1]] if curve and (len(curve) - 1) % step else []):
    print(f"  {point['epoch']:4d} {point['train_seconds']:9.1f} {point['val_r2']} {point['val_concordance']}")
metrics = list(csv.DictReader(open(run / "metrics.csv")))
table = {}
for m in metrics:
    if m["protocol"] == "standard" and m["bin"] == "overall" and m["metric"] == "r2":
        table.setdefault(m["imputer"], {})[m["level"]] = float(m["value"])
print("test masked dosage R2 (standard protocol):")
for name, by_level in table.items():
    print(f"  {name:8s} " + "  ".join(f"@{lv}: {v:.4f}" for lv, v in sorted(by_level.items())))
PYEOF
}

run_one paper-fp16 fp16-cuda 1
run_one paper-bf16 bf16 1
if (( NPROC > 1 )); then
    run_one "paper-fp16-ddp$NPROC" fp16-cuda "$NPROC"
    run_one "paper-bf16-ddp$NPROC" bf16 "$NPROC"
fi
