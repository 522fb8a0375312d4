"""`cdat` subcommands of the data-scientist loop: convert, train, severity, evaluate,
closeup, closeup-labels, damage-labels, backgrounds, claims, export, model-card, models, pack,
gate.

`mobile_api.cli` calls `add_commands(subparsers)`; `python -m training.cli` runs
them standalone. Handlers import torch / Ultralytics lazily, so `cdat --help`
stays light.

    cdat convert --config datasets/damage.yaml --out runs/data/damage
    cdat train --config datasets/damage.yaml --imgsz 320 --time 1.0
    cdat severity --data runs/data/damage/data.yaml --out runs/severity/severity.json
    cdat evaluate --config datasets/damage.yaml --model runs/train/damage/weights/best.pt \
        --severity runs/severity/severity.json
    cdat closeup --parts inference/models/parts.onnx   # close-up part families
    cdat closeup-labels --parts inference/models/parts.onnx --out runs/pseudo/damaged-parts
    cdat damage-labels --damage inference/models/damage.onnx --out runs/pseudo/damage-panels
    cdat backgrounds --out runs/backgrounds          # intact cars, photos without a vehicle
    cdat claims --split val --damage runs/damage-new.onnx --damage-conf 0.15 0.25
    cdat claims --split val --parts runs/parts-new.onnx   # a candidate part model
    cdat export --weights runs/train/damage/weights/best.pt --out inference/models/x.onnx \
        --check-images runs/data/damage/images/test
    cdat models register --file inference/models/x.onnx --task damage \
        --report runs/eval/best/report.json --run runs/train/damage --card inference/models/x.md
    cdat models promote <id>   # refuses a worse candidate unless --force
    cdat gate train --out runs/gate/vehicle-gate.onnx     # the vehicle gate (no_vehicle)
    cdat gate evaluate --gate runs/gate/vehicle-gate.onnx --out runs/gate/test.json
    cdat gate view --gate inference/models/vehicle-gate.onnx --out runs/view/gate.onnx  # its view
    cdat models register --file inference/models/vehicle-gate.onnx --task gate \
        --report runs/gate/test.json --card inference/models/vehicle-gate.md
    cdat models list | cdat models show <id>
"""

from __future__ import annotations

import argparse
import sys

from cdat.errors import CdatError
from training.cli_handlers import lazy, parents
from training.registry_cli import add_models


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    specs = [
        ("convert", "training.convert", "convert data sets into an Ultralytics dataset"),
        ("train", "training.train", "train a damage or part segmentation model"),
        ("evaluate", "training.evaluate", "mAP per class, severity accuracy, vs promoted"),
        ("threshold", "training.threshold", "choose the served confidence threshold on val"),
        ("export", "training.export", "export to ONNX and check parity with PyTorch"),
        ("model-card", "training.card", "write a model card from a run and a report"),
        ("severity", "training.severity", "train the damage severity stage"),
        ("closeup", "training.closeup", "close-up part test on held-out damaged-parts photos"),
        (
            "closeup-labels",
            "training.closeup_pseudo",
            "part labels on train close-ups, kept where their family label agrees",
        ),
        (
            "damage-labels",
            "training.damage_pseudo",
            "damage types for outlined panel damage, where the damage model agrees",
        ),
        (
            "backgrounds",
            "training.backgrounds",
            "photos in which nothing is damage (intact cars, no vehicle) for the damage model",
        ),
        (
            "claims",
            "training.claims",
            "damage measured as a claim is: found, on the right part, none where there is none",
        ),
        ("pack", "training.pack", "pack converted data small for a lent GPU"),
    ]
    for name, module, text in specs:
        parser = subparsers.add_parser(name, help=text, parents=parents(module))
        parser.set_defaults(handler=lazy(module))
    add_models(subparsers)
    _add_gate(subparsers)


def _add_gate(sub: argparse._SubParsersAction) -> None:
    gate = sub.add_parser("gate", help="the vehicle gate: train it, measure it")
    gsub = gate.add_subparsers(dest="gate_command", required=True)
    specs = [
        ("train", "training.vehicle_gate", "train the vehicle gate and export it to ONNX"),
        ("evaluate", "training.gate_eval", "non_vehicle_refused and closeups_refused on test"),
        ("view", "training.view_head", "teach the gate to read a whole car from a close-up"),
    ]
    for name, module, text in specs:
        parser = gsub.add_parser(name, help=text, parents=parents(module))
        parser.set_defaults(handler=lazy(module))


def run(args: argparse.Namespace) -> int:
    """Call a handler; CDAT errors become one line on stderr and exit status 2."""
    try:
        return int(args.handler(args))
    except CdatError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="cdat", description="CDAT data-scientist commands")
    add_commands(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
