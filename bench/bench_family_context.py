"""Would the part-family stage name parts better if it also saw the whole photo?

The served stage (inference/part_family.py) reads the part model's pooled layers on a crop
around each damage: on a close-up the crop alone often cannot tell a fender from a door.
This measures, on the labelled regions of the val splits (never test), the stage's crop
accuracy per source when its softmax head (training.part_family.fit_head, the served
stage's fit) also reads:

- `context`: the same pooled layers on the whole photo (one vector a photo);
- `pos`: where the region lies in the photo (its centre, width and height, as fractions).

Train regions are those training.part_family learns from (train splits, no mirrored copies
here); each variant is fitted at three L2 strengths. The stage built on it is
`python -m training.part_family --context`, chosen on a claim pass and measured on test.

    CDAT_DATA_ROOT=../shared/datasets .venv/bin/python bench/bench_family_context.py

Prints each variant's val accuracy and writes bench/results/family_context.json
(about 20 minutes on the 2-core CPU, most of it pooling crops).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cdat.taxonomy import PartFamily  # noqa: E402
from training.part_family import (  # noqa: E402
    DEFAULT_PARTS,
    FamilyHyperparameters,
    accuracy_report,
    extract,
    photo_features,
    positions,
    regions,
)
from training.softmax_head import fit_head  # noqa: E402

L2 = (3e-3, 1e-2, 3e-2)


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
    context = photo_features(net, train, hp.side, False), photo_features(net, val, hp.side, False)
    where = positions(train, False), positions(val, False)
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
