#!/usr/bin/env bash
# One lent-GPU session: train the damage and part models side by side from packed data,
# warm-started from the promoted models, then export them and record photos/s; results go
# to $OUT. Evaluation runs here afterwards, on the full-size test photos.
#
# Here, before the session (the packs and the wheels travel as carried paths):
#   python -m training.pack --config datasets/damage.yaml --imgsz 416 --out runs/pack/damage
#   python -m training.closeup_pseudo --parts inference/models/<promoted parts>.onnx \
#       --out runs/pseudo/damaged-parts
#   python -m training.pack --config datasets/parts-closeups.yaml --imgsz 384 --quality 60 \
#       --out runs/pack/parts
#   pip download --no-deps -d .whl ultralytics ultralytics-thop
# The part model trains on car-parts plus the close-up labels (datasets/parts-closeups.yaml),
# as the promoted one did; that config names the close-up labels' dataset.yaml, which travels
# as a carried file (without it the script falls back to datasets/parts.yaml and says so).
# Measured (bytes, 2026-11-28): damage pack 22.0 MiB; parts-closeups pack 24.0 MiB at
# --quality 65 (26.3 at the default 75), so 60 leaves a margin; working tree about 36 MiB.
# The tree and the carried paths travel together, 64 MiB at most per call, so the packs go in
# two calls on one warm machine (a warm machine keeps ignored paths between calls; it stays
# warm 30 s after a call):
#   1. run(command="du -sh runs/pack/damage", carry=["runs/pack/damage"])
#   2. at once: run(command="MINUTES=9 bash training/gpu_session.sh", timeout_s=600,
#                   carry=["runs/pack/parts", ".whl", "runs/pseudo/damaged-parts/dataset.yaml"])
# The script trains each task whose pack is on the machine, so if the machine went cold
# between the calls it still trains the part model. This script has not yet run on a GPU;
# tests/training/test_gpu_session.py runs it whole on the CPU on a tiny pack (DEVICE=cpu).
# Knobs (environment): MINUTES of training, TASKS, DEVICE (default 0), DAMAGE_IMGSZ and
# PARTS_IMGSZ (default 416 and 384: the sizes the packs above are made at).
# Back here: the files under $OUT are the new .pt, .onnx, run records and reports. Choose each
# model's served threshold on val (cdat threshold), evaluate on test at it (cdat evaluate
# --conf), then register and promote as the README's data-scientist loop says: the entry
# records the threshold and serving uses it.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-out}
MINUTES=${MINUTES:-9}
DEVICE=${DEVICE:-0}
DAMAGE_IMGSZ=${DAMAGE_IMGSZ:-416}
PARTS_IMGSZ=${PARTS_IMGSZ:-384}
# Default: each task whose pack reached the machine.
TASKS=${TASKS:-$(for t in damage parts; do if [ -f "runs/pack/$t/data.yaml" ]; then echo "$t"; fi; done)}
[ -n "$TASKS" ] || { echo "no pack under runs/pack: carry runs/pack/damage or runs/pack/parts" >&2; exit 2; }
mkdir -p "$OUT"
# The lent machine has torch but not Ultralytics: its wheels travel in .whl and go to a
# folder of their own (the device README's way: the image's site-packages may be read-only).
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
python3 -c "import ultralytics" 2>/dev/null || {
  echo "ultralytics is not installed: carry .whl (pip download --no-deps -d .whl ultralytics ultralytics-thop)" >&2
  exit 2
}
export YOLO_OFFLINE=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
hours=$(python3 -c "print(round($MINUTES / 60, 3))")
cpus=$(nproc)
workers=$(( cpus / 2 - 1 ))

promoted_pt() {  # the promoted model's checkpoint: the warm start
  python3 - "$1" <<'PY'
import json, sys
from pathlib import Path
reg = json.loads(Path("inference/models/registry.json").read_text())
entry = {e["id"]: e for e in reg["entries"]}[reg["promoted"][sys.argv[1]]]
pt = Path("inference/models") / Path(entry["file"]).with_suffix(".pt")
print(pt if pt.is_file() else "")
PY
}

config_of() {  # the training config the pack was made from, as the run record names it
  if [ "$1" = parts ] && [ -f runs/pseudo/damaged-parts/dataset.yaml ]; then
    echo datasets/parts-closeups.yaml
  else
    [ "$1" = parts ] && echo "no runs/pseudo/damaged-parts/dataset.yaml: recording datasets/parts.yaml" >&2
    echo "datasets/$1.yaml"
  fi
}

train_one() {
  local task=$1 imgsz=$2 batch=$3 init
  init=$(promoted_pt "$task")
  # A warm start needs the same classes; otherwise start from the shared COCO weights.
  python3 -m training.train --config "$(config_of "$task")" --prepared-data "runs/pack/$task/data.yaml" \
    --imgsz "$imgsz" --batch "$batch" --workers "$workers" --cache --device "$DEVICE" \
    --epochs 1000 --time "$hours" --close-mosaic 5 --name "$task-gpu" \
    ${init:+--init "$init"} >"$OUT/$task-train.log" 2>&1
}

start=$(date +%s)
pids=()
for task in $TASKS; do
  case $task in
    damage) train_one damage "$DAMAGE_IMGSZ" 32 & ;;
    parts) train_one parts "$PARTS_IMGSZ" 32 & ;;
  esac
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
seconds=$(( $(date +%s) - start ))

for task in $TASKS; do
  run=runs/train/$task-gpu
  cp "$run/weights/best.pt" "$OUT/$task-gpu.pt"
  python3 -m training.export --weights "$run/weights/best.pt" --out "$OUT/$task-gpu.onnx"
  cp "$run/cdat_run.json" "$OUT/$task-cdat_run.json"
  # photos/s: training images x epochs done / training seconds (both tasks share the GPU)
  python3 - "$run" "$seconds" "runs/pack/$task" >"$OUT/$task-speed.json" <<'PY'
import csv, json, sys
from pathlib import Path
run, seconds, pack = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
epochs = len(list(csv.DictReader((run / "results.csv").open())))
images = len(list((pack / "images" / "train").iterdir()))
print(json.dumps({"epochs": epochs, "train_images": images, "seconds": seconds,
                  "photos_per_second": round(epochs * images / seconds, 1)}))
PY
done
ls -la "$OUT"
