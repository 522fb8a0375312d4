"""Export a trained checkpoint to ONNX and check it against the PyTorch model.

The ONNX file has a fixed square input (what inference.runtime.OnnxRuntime needs)
and a dynamic batch axis. Parity: on real images, both models must find the same
detections: same classes, boxes within `box_tol` pixels, scores within
`score_tol`; detections whose score is within `score_tol` of the threshold may
appear in one and not the other.

    python -m training.export --weights runs/train/damage/weights/best.pt \
        --out inference/models/damage-seg-n-20261125.onnx \
        --check-images runs/data/damage/images/test
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.errors import TrainingError, run_script

OPSET = 17
"""onnxruntime 1.32 runs opsets up to 23; 17 is also read by older runtimes."""


@dataclass(frozen=True)
class ParityResult:
    images: int
    detections: int
    max_box_px: float
    max_score: float
    problems: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems


def _fix_spatial_dims(path: Path, imgsz: int) -> None:
    """Keep only the batch axis dynamic: the serving runtime needs a fixed square input."""
    import onnx

    model = onnx.load(str(path))
    dims = model.graph.input[0].type.tensor_type.shape.dim
    for axis in (2, 3):
        dims[axis].ClearField("dim_param")
        dims[axis].dim_value = imgsz
    onnx.save(model, str(path))


def export_onnx(weights: Path, out: Path, imgsz: int, dynamic_batch: bool = True) -> Path:
    """Write the ONNX file at `out` only. Ultralytics writes its export beside the weights it
    reads, where the model a registry serves may live (`inference/models/<name>.onnx` beside
    `<name>.pt`), so it exports from a copy of the weights in a scratch folder."""
    from training.ultra import load_ultralytics

    ultralytics = load_ultralytics()
    with tempfile.TemporaryDirectory(prefix="cdat-export-") as scratch:
        copy = Path(scratch) / weights.name
        shutil.copyfile(weights, copy)
        model = ultralytics.YOLO(str(copy), task="segment")
        produced = Path(
            model.export(
                format="onnx",
                imgsz=imgsz,
                opset=OPSET,
                dynamic=dynamic_batch,
                simplify=True,
                device="cpu",
                batch=1,
            )
        )
        if dynamic_batch:
            _fix_spatial_dims(produced, imgsz)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(produced, out)
    return out


def _detections(model: Any, image: Path, imgsz: int, conf: float) -> tuple[np.ndarray, ...]:
    result = model.predict(str(image), imgsz=imgsz, conf=conf, rect=False, verbose=False)[0]
    boxes = result.boxes
    return (boxes.xyxy.cpu().numpy(), boxes.cls.cpu().numpy().astype(int), boxes.conf.cpu().numpy())


def _compare(
    a: tuple[np.ndarray, ...],
    b: tuple[np.ndarray, ...],
    conf: float,
    box_tol: float,
    score_tol: float,
    where: str,
) -> tuple[float, float, list[str]]:
    """Pair each confident torch detection with the nearest ONNX one of the same class."""
    (box_a, cls_a, sc_a), (box_b, cls_b, sc_b) = a, b
    worst_box = worst_score = 0.0
    problems: list[str] = []
    used: set[int] = set()
    for i in np.argsort(-sc_a):
        same = [j for j in range(len(cls_b)) if cls_b[j] == cls_a[i] and j not in used]
        if not same:
            if sc_a[i] >= conf + score_tol:
                problems.append(f"{where}: class {cls_a[i]} score {sc_a[i]:.3f} missing in ONNX")
            continue
        j = min(same, key=lambda k: float(np.abs(box_b[k] - box_a[i]).max()))
        used.add(j)
        box_err = float(np.abs(box_b[j] - box_a[i]).max())
        score_err = float(abs(sc_b[j] - sc_a[i]))
        worst_box, worst_score = max(worst_box, box_err), max(worst_score, score_err)
        if box_err > box_tol or score_err > score_tol:
            problems.append(f"{where}: box off by {box_err:.2f}px, score by {score_err:.4f}")
    extra = [j for j in range(len(cls_b)) if j not in used and sc_b[j] >= conf + score_tol]
    problems += [f"{where}: extra ONNX detection, class {cls_b[j]}" for j in extra]
    return worst_box, worst_score, problems


def check_parity(
    weights: Path,
    onnx_path: Path,
    images: list[Path],
    imgsz: int,
    conf: float = 0.25,
    box_tol: float = 2.0,
    score_tol: float = 0.01,
) -> ParityResult:
    from training.ultra import load_ultralytics

    ultralytics = load_ultralytics()
    torch_model = ultralytics.YOLO(str(weights), task="segment")
    onnx_model = ultralytics.YOLO(str(onnx_path), task="segment")
    worst_box = worst_score = 0.0
    problems: list[str] = []
    count = 0
    for image in images:
        a = _detections(torch_model, image, imgsz, conf)
        b = _detections(onnx_model, image, imgsz, conf)
        count += len(a[1])
        box, score, found = _compare(a, b, conf, box_tol, score_tol, image.name)
        worst_box, worst_score = max(worst_box, box), max(worst_score, score)
        problems += found
    return ParityResult(len(images), count, worst_box, worst_score, problems)


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0], add_help=add_help)
    parser.add_argument("--weights", type=Path, required=True, help="trained .pt checkpoint")
    parser.add_argument("--out", type=Path, required=True, help="the .onnx file to write")
    parser.add_argument("--imgsz", type=int, default=None, help="default: the training size")
    parser.add_argument("--static-batch", action="store_true", help="batch fixed at 1")
    parser.add_argument(
        "--check-images", type=Path, default=None, help="folder of real photos for the parity check"
    )
    parser.add_argument(
        "--check-count", type=int, default=20, help="photos in the parity check (default 20)"
    )
    parser.add_argument("--box-tol", type=float, default=2.0, help="pixels")
    parser.add_argument(
        "--score-tol", type=float, default=0.01, help="largest confidence difference (0.01)"
    )
    return parser


def main(args: argparse.Namespace) -> int:
    from training.eval_split import model_imgsz

    if not args.weights.is_file():
        raise TrainingError(f"no such checkpoint: {args.weights}")
    imgsz = args.imgsz or model_imgsz(args.weights)
    out = export_onnx(args.weights, args.out, imgsz, dynamic_batch=not args.static_batch)
    print(f"exported {out} (imgsz {imgsz}, opset {OPSET})")
    if args.check_images is None:
        return 0
    images = sorted(p for p in args.check_images.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    result = check_parity(
        args.weights,
        out,
        images[: args.check_count],
        imgsz,
        box_tol=args.box_tol,
        score_tol=args.score_tol,
    )
    print(
        f"parity on {result.images} images, {result.detections} detections: max box error "
        f"{result.max_box_px:.3f}px (tol {args.box_tol}), max score error "
        f"{result.max_score:.4f} (tol {args.score_tol})"
    )
    if not result.ok:
        raise TrainingError("ONNX differs from PyTorch: " + "; ".join(result.problems[:5]))
    return 0


if __name__ == "__main__":
    run_script(main, get_args_parser())
