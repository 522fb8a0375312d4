"""Notes `cdat models promote` prints when the models served together were not measured
together: a damage rule that reads a view no promoted gate gives, or a part model measured
under another whole-car rule than the promoted damage model serves."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def view_note(registry: Any) -> str | None:
    """The promoted damage model's whole-car rule reads the gate's view, and the promoted gate
    reads none: whole-car views are then counted by parts (inference/loading.py logs it at
    start), which is not what the damage model's claim figures were measured with."""
    damage_id, gate_id = registry.promoted.get("damage"), registry.promoted.get("gate")
    rule = None if damage_id is None else registry.get(damage_id).served_whole_car_rule
    if rule is None or rule.view_probability is None:
        return None
    if gate_id is not None and _reads_view(registry.path_of(registry.get(gate_id))):
        return None
    gate = f"the promoted gate {gate_id} reads none" if gate_id else "no gate is promoted"
    return (
        f"note: {damage_id}'s whole-car rule reads the photo's view and {gate}: whole-car "
        "views are counted by parts until a gate that reads the view (cdat gate view) is promoted"
    )


def _reads_view(gate_file: Path) -> bool:
    import onnx

    from inference.vehicle_gate import VIEW_OUTPUT

    try:
        outputs = onnx.load(str(gate_file), load_external_data=False).graph.output
    except Exception:  # a missing or damaged file reads no view; loading it says why
        return False
    return any(o.name == VIEW_OUTPUT for o in outputs)


def damage_rule_note(registry: Any, entry: Any) -> str | None:
    """A part model measured under another whole-car rule than the promoted damage model
    serves (`cdat evaluate --claims --whole-car-rule`): its claim figures hold once a damage
    entry with that rule is served, which promoting the part model alone does not do."""
    from cdat.whole_car import WholeCarRule

    measured = entry.metrics.get("damage_whole_car_rule") if entry.task == "parts" else None
    damage_id = registry.promoted.get("damage")
    if not measured or damage_id is None:
        return None
    served = registry.get(damage_id).served_whole_car_rule
    if served == WholeCarRule.from_record(measured):
        return None
    serves = json.dumps(served.to_record() if served else None)
    return (
        f"note: {entry.id}'s claim figures were measured with the damage model under the "
        f"whole-car rule {json.dumps(measured)}, and {damage_id} serves {serves}: register "
        f"the damage model with that rule (cdat evaluate --whole-car-rule) and promote it"
    )
