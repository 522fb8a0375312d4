"""Every reason the shipped triage policy can give has plain words for the policyholder."""

from __future__ import annotations

from importlib import resources

import yaml

from mobile_api.api.claim_views import PLAIN_REASONS


def test_every_triage_reason_of_the_shipped_policy_has_plain_words() -> None:
    # given the reasons the shipped triage policy weighs
    policy = yaml.safe_load(resources.files("cdat.data").joinpath("triage.yaml").read_text())
    reasons = set(policy["priorities"])
    # then each has its own sentence, not the generic fallback
    assert reasons - set(PLAIN_REASONS) == set()
    # and a claim refused for showing no vehicle says so without naming a check
    assert "vehicle" in PLAIN_REASONS["no_vehicle"]
