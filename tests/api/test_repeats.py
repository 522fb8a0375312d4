"""A damage deleted with its repeats, on each database: once, whoever else deletes it at the
same moment, and a hostile `repeats` value changes nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from mobile_api.storage import models
from mobile_api.worker.tasks import assess_claim
from tests import images
from tests.api.backends import BACKENDS, Stack, at_once, make_stack
from tests.conftest import open_claim
from tests.web.conftest import csrf_of, sign_in


@pytest.fixture(params=BACKENDS)
def stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Stack]:
    yield from make_stack(request, tmp_path, "tests.fakes:build_outlined_again_fake_analyzer")


def flagged_photo(stack: Stack) -> tuple[str, str]:
    """A claim in review whose photo's dent is also outlined and named again."""
    claim_id, headers = open_claim(stack.client)
    files = [("files", ("p.jpg", images.jpeg(color=(222, 222, 222)), "image/jpeg"))]
    photo = stack.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)
    job = stack.client.post(f"/v1/claims/{claim_id}/submit", headers=headers).json()["job"]
    assess_claim.run(job["id"])
    return claim_id, photo.json()["photos"][0]["id"]


def stored(stack: Stack, claim_id: str) -> tuple[list[models.AssessmentRecord], list[str]]:
    with stack.runtime.sessions() as session:
        records = session.scalars(
            select(models.AssessmentRecord)
            .where(models.AssessmentRecord.claim_id == claim_id)
            .order_by(models.AssessmentRecord.version)
        ).all()
        actions = session.scalars(
            select(models.AuditEvent.action).where(models.AuditEvent.claim_id == claim_id)
        ).all()
        return list(records), list(actions)


def test_a_damage_deleted_with_its_repeats_at_once_from_four_tabs_is_deleted_once(
    stack: Stack,
) -> None:
    # given a claim in review open in a signed-in adjuster's workspace
    claim_id, photo = flagged_photo(stack)
    assert sign_in(stack.client).status_code == 303
    page = f"/adjuster/claims/{claim_id}"
    csrf = csrf_of(stack.client.get(page).text)
    delete = f"{page}/damages/{photo}/0/delete"
    # when a hostile repeats value is sent, it changes nothing
    hostile = {"csrf_token": csrf, "repeats": "delete'; DROP TABLE claims; --" * 50}
    assert stack.client.post(delete, data=hostile, follow_redirects=False).status_code == 422
    assert len(stored(stack, claim_id)[0]) == 1

    # when four deletes of the dent with its repeats are posted at the same moment
    def post(_: int):
        form = {"csrf_token": csrf, "repeats": "delete"}
        return stack.client.post(delete, data=form, follow_redirects=False)

    responses = at_once(4, post)
    # then one deleted the dent and its two repeats, and the others found nothing to delete
    codes = sorted(r.status_code for r in responses)
    assert codes[0] == 303 and codes.count(303) == 1 and all(c >= 400 for c in codes[1:])
    records, actions = stored(stack, claim_id)
    assert len(records) == 2 and records[-1].body["photos"][0]["damages"] == []
    assert actions == ["finding.delete"]
