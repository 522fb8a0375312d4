#!/usr/bin/env bash
# One lent-GPU session: train the damage and part models side by side from packed data,
# warm-started from the promoted models, and record photos/s; results go to $OUT. Export
# (ONNX) and evaluation run here afterwards: the export's simplifier (onnxslim) is not on the
# lent machine, and the test photos are full size here.
#
# Here, before the session (the packs and the wheels travel as carried paths). The damage
# model trains on what the served one did (datasets/damage-claims.yaml: make its pseudo
# labels and backgrounds first, by the commands at the top of that file):
#   python -m training.pack --config datasets/damage-claims.yaml --imgsz 416 --quality 55 \
#       --shards 1 --budget-mib 52 --out runs/pack/damage
#   python -m training.closeup_pseudo --parts inference/models/<promoted parts>.onnx \
#       --out runs/pseudo/damaged-parts
#   python -m training.pack --config datasets/parts-closeups.yaml --imgsz 384 --quality 60 \
#       --shards 3 --out runs/pack/parts
#   pip download --no-deps -d .whl ultralytics ultralytics-thop
# Each pack records the config it was made from (pack.json), and the run records that
# config; a config naming made data sets needs their dataset.yaml files carried too
# (runs/pseudo/*/dataset.yaml, runs/backgrounds/dataset.yaml).
# A pack goes as one archive (tar czf runs/pack/damage.tar.gz runs/pack/damage), which this
# script unpacks: the device tool refused the same pack as a folder (22,307 files, 56.6 MB
# of bytes but 119 MB on disk) and took the archive. The tracked
# tree is about 51 MiB, most of it served models the session does not read; what ran on
# 2026-12-04 (the first lent GPU) held them out of the tree for the one call, so that the
# whole damage pack (416 px, --quality 55, --shards 1 --budget-mib 52: 54.3 MB as an
# archive) travelled with it:
#   git rm -r -q --cached <the served .onnx files, the parts .pt> mobile_api tests bench docs,
#   each moved under runs/ (ignored); then, the only call,
#   run(command="tar ... ; TASKS=damage MINUTES=7.5 bash training/gpu_session.sh",
#       timeout_s=600, carry=["runs/pack/damage.tar.gz", ".whl",
#       "runs/pseudo/damaged-parts-types/dataset.yaml",
#       "runs/pseudo/car-parts-damage-types/dataset.yaml", "runs/backgrounds/dataset.yaml"]);
#   then each file moved back and `git reset -q`. It held the machine 526 s of the 900
#   (491 s of command): 14 epochs in 7.5 minutes, 212 photos/s, data loading on 15 CPUs.
# Every call holds the ONNX models out of the tree the same way (the session reads only the
# .pt files; with them the tree is past 64 MiB): before the first call
#   mkdir -p runs/held-out && mv inference/models/*.onnx runs/held-out/ &&
#   git rm -q --cached 'inference/models/*.onnx'
# and after the last: mv runs/held-out/*.onnx inference/models/ && git reset -q
# Shards (--shards N) are the other way: each goes in a call of its own (the damage pack in
# six, --shards 6 --budget-mib 9.5, so that a call's tree and shard stay within 64 MiB), a
# warm machine keeping ignored paths between calls for only 30 s, the last call running this script;
# the script trains each task whose pack is on the machine, on the shards that reached it
# (saying which did not). tests/training/test_gpu_session.py runs it whole on the CPU on a
# tiny pack (DEVICE=cpu), tarred too.
# Knobs (environment): MINUTES of training, TASKS, DEVICE (default 0), DAMAGE_IMGSZ and
# PARTS_IMGSZ (default 416 and 384: the sizes the packs above are made at), DAMAGE_TRAIN_ARGS
# and PARTS_TRAIN_ARGS (more training.train options). PARTS_TRAIN_ARGS defaults to none
# (Ultralytics' recipe, every layer learning); DAMAGE_TRAIN_ARGS to the damage recipe
# ("--freeze 10 --optimizer AdamW --lr0 0.0003 --cos-lr --mosaic 0 --save-period 4"), so a
# lent machine's one call runs it without being told; DAMAGE_TRAIN_ARGS="" asks for
# Ultralytics' own (adding --single-cls trains a detector of damage alone: three frozen CPU
# epochs ranked damage no better, docs/model-experiments.md, twenty-eighth session, and
# serving one needs a type stage that does not exist yet). The first lent GPU's run lost close-ups of heavy damage; CPU runs of the
# served recipe lost them too, with and without the close-up windows of intact cars
# (docs/model-experiments.md, sixteenth and seventeenth sessions): pack mAP, on which a
# checkpoint is kept, holds no car-parts-damage photo, so choose among the run's
# checkpoints on the claim pass over val (training.claim_rules --pass), not on pack mAP:
# with --save-period N in DAMAGE_TRAIN_ARGS each Nth epoch's checkpoint comes back beside
# best.pt, its optimizer state stripped (about 6 MB each: at 4, a 9-minute run's four fit a
# call's 64 MiB with both tasks' best.pt). Mosaic is what lost the close-ups: the eighteenth session's CPU run without it
# proposed more of them than the served model (it lost some faint whole-car scratches
# instead), hence the default damage recipe above.
# Back here: the files under $OUT are the new .pt, run records and reports. Export each
# (python -m training.export --weights <.pt> --out <.onnx>). A damage checkpoint is served as
# entry -9 is: a verifier (training.damage_verifier) on whole-car views and a close-up
# verifier (training.verifier_tune --intact-closeups --damage <.pt> --detector <.onnx>) on
# the rest, so make both for it, compare checkpoints on val as a claim is (cdat evaluate
# --split val --claims --verifier ... --closeup-verifier ...), evaluate the one chosen on
# test once the same way, then register and promote as the README's data-scientist loop
# says. A part checkpoint: choose its threshold on val (cdat threshold), evaluate on test
# at it, register and promote.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-out}
MINUTES=${MINUTES:-9}
DEVICE=${DEVICE:-0}
DAMAGE_IMGSZ=${DAMAGE_IMGSZ:-416}
PARTS_IMGSZ=${PARTS_IMGSZ:-384}
DAMAGE_RECIPE="--freeze 10 --optimizer AdamW --lr0 0.0003 --cos-lr --mosaic 0 --save-period 4"
read -r -a damage_train_args <<<"${DAMAGE_TRAIN_ARGS-$DAMAGE_RECIPE}"
read -r -a parts_train_args <<<"${PARTS_TRAIN_ARGS:-}"
for archive in runs/pack/*.tar.gz; do
  if [ -f "$archive" ]; then tar xzf "$archive"; fi
done
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
# Ultralytics reads results.csv through polars when it saves a checkpoint (inside a try that
# falls back to no table), and otherwise only for plots, which training turns off; polars is
# not on the lent machine and its wheel (about 40 MiB) would crowd out the data. A module that
# refuses every use stands in for it there, and says so.
if ! python3 -c "import polars" 2>/dev/null; then
  mkdir -p /tmp/site/polars
  cat >/tmp/site/polars/__init__.py <<'PY'
"""polars is not installed on this machine: any use of it fails (see training/gpu_session.sh)."""


def __getattr__(name):
    raise ImportError(f"polars.{name}: polars is not installed on this machine")
PY
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
  echo "polars is missing here: Ultralytics' results table in the checkpoint stays empty" >&2
fi
python3 -c "import ultralytics" 2>/dev/null || {
  echo "ultralytics is not installed: carry .whl (pip download --no-deps -d .whl ultralytics ultralytics-thop)" >&2
  exit 2
}
export YOLO_OFFLINE=1 PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
hours=$(python3 -c "print(round($MINUTES / 60, 3))")
cpus=$(nproc)
tasks_here=$(echo $TASKS | wc -w)
workers=$(( cpus / tasks_here - 1 ))

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
  if [ -f "runs/pack/$1/pack.json" ]; then
    python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["config"])' "runs/pack/$1/pack.json"
  elif [ "$1" = parts ] && [ -f runs/pseudo/damaged-parts/dataset.yaml ]; then
    echo datasets/parts-closeups.yaml
  else
    [ "$1" = parts ] && echo "no runs/pseudo/damaged-parts/dataset.yaml: recording datasets/parts.yaml" >&2
    echo "datasets/$1.yaml"
  fi
}

present_shards() {  # the pack's data.yaml with only the train shards that reached the machine
  python3 - "runs/pack/$1" <<'PY'
import sys
from pathlib import Path
import yaml
pack = Path(sys.argv[1])
data = yaml.safe_load((pack / "data.yaml").read_text())
train = data["train"] if isinstance(data["train"], list) else [data["train"]]
here = [t for t in train if (pack / t).is_dir()]
for t in train:
    if t not in here:
        print(f"shard {pack / t} did not reach this machine: training without it", file=sys.stderr)
(pack / "data-present.yaml").write_text(yaml.safe_dump({**data, "train": here}, sort_keys=False))
print(pack / "data-present.yaml")
PY
}

train_one() {
  local task=$1 imgsz=$2 batch=$3 init data
  shift 3
  init=$(promoted_pt "$task")
  data=$(present_shards "$task")
  # A warm start needs the same classes; otherwise start from the shared COCO weights.
  python3 -m training.train --config "$(config_of "$task")" --prepared-data "$data" \
    --imgsz "$imgsz" --batch "$batch" --workers "$workers" --cache --device "$DEVICE" \
    --epochs 1000 --time "$hours" --close-mosaic 5 --name "$task-gpu" \
    ${init:+--init "$init"} "$@" >"$OUT/$task-train.log" 2>&1
}

# On a GPU, Ultralytics first checks mixed precision by running yolo26n.pt, which it would
# download; nothing can be downloaded there. Any detector serves that check (it compares one
# photo's FP32 and AMP outputs), so the damage warm start stands in for it.
if [ "$DEVICE" != cpu ]; then
  amp_weights=$(python3 -c "from ultralytics.utils import WEIGHTS_DIR; print(WEIGHTS_DIR.resolve() / 'yolo26n.pt')" | tail -1)
  stand_in=$(promoted_pt damage)
  if [ ! -f "$amp_weights" ] && [ -n "$stand_in" ]; then
    mkdir -p "$(dirname "$amp_weights")" && cp "$stand_in" "$amp_weights"
  fi
fi

start=$(date +%s)
pids=()
for task in $TASKS; do
  case $task in
    damage) train_one damage "$DAMAGE_IMGSZ" 32 ${damage_train_args[@]+"${damage_train_args[@]}"} & ;;
    parts) train_one parts "$PARTS_IMGSZ" 32 ${parts_train_args[@]+"${parts_train_args[@]}"} & ;;
  esac
  pids+=($!)
done
for pid in "${pids[@]}"; do wait "$pid"; done
seconds=$(( $(date +%s) - start ))

for task in $TASKS; do
  run=runs/train/$task-gpu
  cp "$run/weights/best.pt" "$OUT/$task-gpu.pt"
  for kept in "$run"/weights/epoch*.pt; do  # --save-period: chosen back here on the claim pass
    # An epoch's checkpoint carries its optimizer state (20 MB for the damage model, 6 MB
    # without): a call brings back 64 MiB in all, so only the weights travel.
    if [ -f "$kept" ]; then
      python3 -c "import sys; from ultralytics.utils.torch_utils import strip_optimizer as s; s(sys.argv[1], sys.argv[2])" \
        "$kept" "$OUT/$task-gpu-$(basename "$kept")" >/dev/null
    fi
  done
  cp "$run/cdat_run.json" "$OUT/$task-cdat_run.json"
  # photos/s: training images x epochs done / training seconds (both tasks share the GPU)
  python3 - "$run" "$seconds" "runs/pack/$task" >"$OUT/$task-speed.json" <<'PY'
import csv, json, sys
from pathlib import Path
import yaml
run, seconds, pack = Path(sys.argv[1]), float(sys.argv[2]), Path(sys.argv[3])
epochs = len(list(csv.DictReader((run / "results.csv").open())))
shards = yaml.safe_load((pack / "data-present.yaml").read_text())["train"]
images = sum(len(list((pack / shard).iterdir())) for shard in shards)
print(json.dumps({"epochs": epochs, "train_images": images, "seconds": seconds,
                  "photos_per_second": round(epochs * images / seconds, 1)}))
PY
done
ls -la "$OUT"
