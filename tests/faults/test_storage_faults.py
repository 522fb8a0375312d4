"""Blob storage failing or full: uploads are refused whole with a 503, nothing half-stored."""

from __future__ import annotations

from pathlib import Path

from tests.faults.storage import refused_uploads


def test_broken_blob_store_refuses_uploads_whole_and_recovers(tmp_path: Path) -> None:
    # given a blob store that is full, then one whose root cannot be written
    # when a policyholder uploads three photos at each
    outcomes = refused_uploads(tmp_path, rounds=1)
    broken, mended = outcomes[:-1], outcomes[-1]
    # then each upload is a 503 the app can retry, and no row or blob was stored
    assert [o["fault"] for o in broken] == ["full", "root-is-a-file"]
    for outcome in broken:
        assert outcome["status"] == 503, outcome
        assert outcome["code"] == "storage_unavailable", outcome
        assert outcome["retry_after"], outcome
        assert outcome["nothing_half_stored"], outcome
    # and once the store works again, the same upload succeeds
    assert mended["status"] == 201
