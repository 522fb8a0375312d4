"""Blob storage that fails, for tests/faults and bench/faults.py.

Root runs ignore a read-only directory, so "unusable" is a blob root that is a file: every
write then fails with an OSError, exactly as a full or read-only volume would.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

from mobile_api.errors import StorageError
from mobile_api.storage.blobs import LocalBlobStore
from tests import images
from tests.conftest import make_settings
from tests.hostile.service import Service, hostile_service, new_claim, stored_state


class FullBlobStore(LocalBlobStore):
    """A local store on a volume that is full: reads work, every write fails."""

    def put(self, sha256: str, data: bytes, content_type: str) -> None:
        raise StorageError(f"could not store blob: {errno.errorcode[errno.ENOSPC]}")


def _upload(service: Service, claim_id: str, headers: dict[str, str], seed: int) -> Any:
    photos = [images.jpeg(color=(seed % 256, i * 40, 9)) for i in range(3)]
    files = [("files", (f"p{i}.jpg", data, "image/jpeg")) for i, data in enumerate(photos)]
    return service.client.post(f"/v1/claims/{claim_id}/photos", files=files, headers=headers)


def refused_uploads(root: Path, rounds: int) -> list[dict[str, Any]]:
    """Upload while the store is broken, each way, `rounds` times; then once it is mended."""
    outcomes: list[dict[str, Any]] = []
    root.mkdir(parents=True, exist_ok=True)
    with hostile_service(make_settings(root)) as service:
        healthy = service.runtime.blobs
        not_a_dir = root / "not-a-directory"
        not_a_dir.write_bytes(b"")
        broken = {"full": FullBlobStore(healthy.root), "root-is-a-file": LocalBlobStore(not_a_dir)}  # type: ignore[attr-defined]
        claim_id, headers = new_claim(service)
        for attempt in range(rounds):
            for kind, store in broken.items():
                service.runtime.blobs = store
                before = stored_state(service)
                response = _upload(service, claim_id, headers, attempt)
                after = stored_state(service)
                error = response.json().get("error") or {}
                outcomes.append(
                    {
                        "fault": kind,
                        "status": response.status_code,
                        "code": error.get("code"),
                        "retry_after": response.headers.get("retry-after"),
                        "nothing_half_stored": after == before,
                    }
                )
        service.runtime.blobs = healthy
        mended = _upload(service, claim_id, headers, 0)
        outcomes.append(
            {"fault": "none (mended)", "status": mended.status_code, "nothing_half_stored": True}
        )
    return outcomes
