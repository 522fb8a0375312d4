"""The capture page's record of each photo: which shot it is and what its quick check said.

The API process writes a `pending` row when a photo is uploaded and queues the quick check
(`quick_check.run_check` on the worker's `checks` queue); the worker writes the result. The
page reads rows here and turns issue codes into plain words (`strings`), so the stored
result is the same in every language.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from mobile_api.capture.strings import EN, SHOT_NAMES, t
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.db import transaction

PENDING, DONE, FAILED = "pending", "done", "failed"


@dataclass(frozen=True)
class PhotoCheck:
    photo_id: str
    shot: str
    state: str
    issues: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self, shot_names: dict[str, str]) -> dict[str, Any]:
        return {
            "photo_id": self.photo_id,
            "shot": self.shot,
            "state": self.state,
            "messages": [plain(issue, shot_names) for issue in self.issues],
        }


def plain(issue: dict[str, Any], shot_names: dict[str, str]) -> str:
    """An issue as the claimant reads it."""
    code = str(issue.get("code", ""))
    if code == "duplicate_photo":
        other = shot_names.get(str(issue.get("other_shot", "")), t("photo_of", shot="?"))
        return t("issue_duplicate_photo", other=other)
    if code == "captured_before_loss":
        return t("issue_captured_before_loss", taken=issue.get("taken", ""))
    key = f"issue_{code}"
    return t(key) if key in _KNOWN else t("issue_unreadable")


# every issue code with words of its own; any other reads as unreadable
_KNOWN = {key for key in EN if key.startswith("issue_")}


def upload_key(secret_key: str, claim_id: str, key: str) -> str:
    """What is stored of an upload's Idempotency-Key: an HMAC bound to the claim."""
    message = f"capture-upload|{claim_id}|{key}".encode()
    return hmac.new(secret_key.encode(), message, hashlib.sha256).hexdigest()


def by_upload_key(rt: Runtime, claim_id: str, key_hash: str) -> PhotoCheck | None:
    with rt.sessions() as session:
        row = session.scalar(
            select(models.CaptureCheck).where(
                models.CaptureCheck.claim_id == claim_id,
                models.CaptureCheck.upload_key == key_hash,
            )
        )
        return _check(row) if row is not None else None


def record_upload(
    rt: Runtime, claim_id: str, photo_id: str, shot: str, key_hash: str | None
) -> tuple[PhotoCheck, bool]:
    """The photo's row, made pending for `shot`; True when the quick check must be queued.
    A photo already on the claim under another shot keeps that shot (the page then tells
    the claimant it is the same photo)."""
    with transaction(rt.sessions) as session:
        row = session.get(models.CaptureCheck, photo_id)
        if row is not None and row.claim_id == claim_id:
            if row.upload_key is None and key_hash:
                row.upload_key = key_hash
            return _check(row), row.state == FAILED
        row = models.CaptureCheck(
            photo_id=photo_id,
            claim_id=claim_id,
            shot=shot,
            upload_key=key_hash,
            state=PENDING,
            issues=[],
        )
        session.add(row)
        session.flush()
        return _check(row), True


def claim_checks(rt: Runtime, claim_id: str) -> dict[str, PhotoCheck]:
    """Photo id -> its check, for every photo still on the claim (a removed or replaced
    photo's check goes with it)."""
    with rt.sessions() as session:
        rows = session.scalars(
            select(models.CaptureCheck)
            .join(models.Photo, models.Photo.id == models.CaptureCheck.photo_id)
            .where(models.CaptureCheck.claim_id == claim_id, models.Photo.removed_at.is_(None))
        ).all()
        return {row.photo_id: _check(row) for row in rows}


def _check(row: models.CaptureCheck) -> PhotoCheck:
    return PhotoCheck(row.photo_id, row.shot, row.state, list(row.issues or []))


def shot_names() -> dict[str, str]:
    return {shot: name for shot, (name, _) in SHOT_NAMES.items()}


def queue_check(rt: Runtime, check: PhotoCheck) -> PhotoCheck:
    """The photo's quick check queued on the worker; failed when the queue is down."""
    from mobile_api.worker.tasks import capture_check

    try:
        capture_check.apply_async(args=[check.photo_id])
    except Exception:  # the photo is stored; only its quick check is lost
        mark_failed(rt, check.photo_id)
        return PhotoCheck(check.photo_id, check.shot, FAILED)
    return check


def mark_failed(rt: Runtime, photo_id: str) -> None:
    """The quick check could not be queued: the page says so instead of waiting for ever."""
    with transaction(rt.sessions) as session:
        row = session.get(models.CaptureCheck, photo_id)
        if row is not None and row.state == PENDING:
            row.state = FAILED
