"""Would the part-family stage name parts better if it also saw the whole photo?

The served stage (inference/part_family.py) reads the part model's pooled layers on a crop
around each damage: on a close-up the crop alone often cannot tell a fender from a door.
This measures, on the labelled regions of the val splits (never test), the stage's crop
accuracy per source when its softmax head (training.part_family.fit_head, the served
stage's fit) also reads:

- `context`: the same pooled layers on the whole photo (one vector a photo);
- `pos`: where the region lies in the photo (its centre, width and height, as fractions).

Train regions are those training.part_family learns from (train splits, no mirrored copies
here); each variant is fitted at three L2 strengths. Exploration only: a stage built on it
is chosen on a claim pass and measured on test as usual.

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_family_context.py

Prints each variant's val accuracy and writes bench/results/family_context.json
(about 20 minutes on the 2-core CPU, most of it pooling crops).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdat.findings import Box  # noqa: E402
from cdat.taxonomy import PartFamily  # noqa: E402
from training.part_family import (  # noqa: E402
    DEFAULT_PARTS,
    FamilyHyperparameters,
    Region,
    accuracy_report,
    extract,
    fit_head,
    regions,
)

L2 = (3e-3, 1e-2, 3e-2)


def photo_features(net: object, items: Sequence[Region], side: int) -> np.ndarray:
    """The pooled layers of each region's whole photo (computed once a photo)."""
    import torch

    from inference.crops import damage_crop
    from training.vehicle_gate import read_photo

    paths = sorted({r.image for r in items})
    pooled: dict[Path, np.ndarray] = {}
    for start in range(0, len(paths), 32):
        crops = []
        for path in paths[start : start + 32]:
            photo = read_photo(path)
            h, w = photo.shape[:2]
            crops.append(damage_crop(photo, Box(0, 0, w, h), side))
        with torch.no_grad():
            batch = net.features(torch.from_numpy(np.stack(crops)))  # type: ignore[attr-defined]
        pooled.update(zip(paths[start : start + 32], batch.numpy().astype(np.float64), strict=True))
    return np.stack([pooled[r.image] for r in items])


def position(items: Sequence[Region]) -> np.ndarray:
    return np.array(
        [[(r.box.x1 + r.box.x2) / 2, (r.box.y1 + r.box.y2) / 2, r.box.x2 - r.box.x1,
          r.box.y2 - r.box.y1] for r in items]
    )  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench/results/family_context.json")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads")
    args = parser.parse_args()
    import torch

    from training.gate_net import load_gate_net

    torch.set_num_threads(args.threads)
    hp = FamilyHyperparameters()
    net = load_gate_net(DEFAULT_PARTS, hp.taps)
    train, val = regions("train", hp.seed, None), regions("val", hp.seed, None)
    crops = extract(net, train, hp.side, False), extract(net, val, hp.side, False)
    context = photo_features(net, train, hp.side), photo_features(net, val, hp.side)
    where = position(train), position(val)
    variants = {
        "crop": (crops,),
        "crop+context": (crops, context),
        "crop+pos": (crops, where),
        "crop+context+pos": (crops, context, where),
    }
    families = [f for f in PartFamily if any(r.family is f for r in train)]
    y = np.array([families.index(r.family) for r in train])
    out: dict[str, object] = {"train_regions": len(train), "val_regions": len(val)}
    for name, parts in variants.items():
        x_train = np.hstack([p[0] for p in parts])
        x_val = np.hstack([p[1] for p in parts])
        for l2 in L2:
            report = accuracy_report(fit_head(x_train, y, len(families), l2), x_val, val,
                                     families)  # fmt: skip
            figures = {s: round(report[s]["accuracy"], 3) for s in report}
            out[f"{name} l2={l2}"] = figures
            print(name, l2, figures, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
