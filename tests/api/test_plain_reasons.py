"""Every reason the shipped triage policy can give has plain words for the policyholder."""

from __future__ import annotations

from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import pytest
import yaml

from mobile_api.api.claim_views import CLOSE_UP_WANTED, PLAIN_REASONS
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import BACKENDS, Stack, make_stack
from tests.conftest import open_claim


def test_every_triage_reason_of_the_shipped_policy_has_plain_words() -> None:
    # given the reasons the shipped triage policy weighs
    policy = yaml.safe_load(resources.files("cdat.data").joinpath("triage.yaml").read_text())
    reasons = set(policy["priorities"])
    # then each has its own sentence, not the generic fallback
    assert reasons - set(PLAIN_REASONS) == set()
    # and a claim refused for showing no vehicle says so without naming a check
    assert "vehicle" in PLAIN_REASONS["no_vehicle"]


@pytest.fixture(params=BACKENDS)
def whole_cars(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from make_stack(request, tmp_path, "tests.fakes:build_whole_car_fake_analyzer")


def assessed(stack: Stack, *colours: tuple[int, int, int]) -> dict:
    claim_id, headers = open_claim(stack.client)
    files = [
        ("files", (f"{k}.jpg", images.jpeg(color=c), "image/jpeg")) for k, c in enumerate(colours)
    ]
    assert stack.client.post(
        f"/v1/claims/{claim_id}/photos", files=files, headers=headers
    ).is_success
    job = stack.client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]
    assess_claim.run(job["id"])
    return stack.client.get(f"/v1/claims/{claim_id}", headers=headers).json()["assessment"]


def test_no_damage_on_photos_of_the_whole_car_tells_the_policyholder_a_close_up_helps(
    whole_cars: Stack,
) -> None:
    # given a claim of two photos of the whole car, on which no damage is found
    assessment = assessed(whole_cars, (90, 90, 90), (200, 200, 200))
    # then the policyholder is told why nothing was found and what would help
    assert assessment["outcome"] == "under_review"
    assert CLOSE_UP_WANTED in assessment["reasons"] and assessment["close_up_wanted"] is True
    assert PLAIN_REASONS["no_damage_found"] not in assessment["reasons"]
    assert "Add a close-up of each damaged area" in CLOSE_UP_WANTED


def test_no_damage_on_a_close_up_keeps_the_plain_no_damage_words() -> None:
    from cdat.findings import PhotoAnalysis
    from mobile_api.api.claim_views import close_up_wanted, plain_reason

    def seen(view: float | None) -> PhotoAnalysis:
        return PhotoAnalysis("p", 640, 480, (), (), whole_car_view_probability=view)

    # given photos that are not all of the whole car: a close-up, or one no gate read
    for photos in ([seen(0.9), seen(0.2)], [seen(None)], []):
        # then no close-up is wanted, and no damage found is said in the plain words
        assert not close_up_wanted(["no_damage_found"], photos)
        assert plain_reason("no_damage_found") == PLAIN_REASONS["no_damage_found"]
    # and on whole cars alone a close-up is wanted where no damage was found, not otherwise
    assert close_up_wanted(["photo_quality", "no_damage_found"], [seen(0.9), seen(0.5)])
    assert not close_up_wanted(["low_confidence"], [seen(0.9)])
    assert plain_reason("no_damage_found", close_up=True) == CLOSE_UP_WANTED
    assert plain_reason("low_confidence", close_up=True) == PLAIN_REASONS["low_confidence"]
