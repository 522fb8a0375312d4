"""An adjuster's retake request: one typed value, one JSON layout, read back as written."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cdat.claims import RETAKE_FORMAT, RetakeRequest, RetakeRequestUnreadable


def test_a_retake_request_reads_back_as_it_was_stored() -> None:
    # given a request for two new photos
    asked = RetakeRequest("Retake the bumper in daylight", ("p1", "p2"), datetime.now(UTC))
    # when it is stored as JSON and read back
    again = RetakeRequest.from_json(asked.as_json())
    # then nothing is lost
    assert again == asked


def test_a_request_stored_before_it_had_a_time_still_reads() -> None:
    # given the layout with only a message, as the oldest rows may hold
    # then it reads with no photos and no time
    assert RetakeRequest.from_json({"message": "More photos"}) == RetakeRequest("More photos")


def test_a_request_is_stored_with_its_format() -> None:
    # given a request as it is stored now
    stored = RetakeRequest("More photos", ("p1",), datetime(2026, 1, 2, tzinfo=UTC)).as_json()
    # then the layout says which format it is, and holds the request's fields
    assert stored == {
        "format": RETAKE_FORMAT,
        "message": "More photos",
        "photo_ids": ["p1"],
        "requested_at": "2026-01-02T00:00:00Z",
    }


def test_a_request_written_before_the_format_key_reads_as_format_1() -> None:
    # given the layout written before this codec (no format key, an isoformat time)
    raw = {"message": "m", "photo_ids": ["p1"], "requested_at": "2026-01-02T00:00:00+00:00"}
    # then it reads as it was written
    assert RetakeRequest.from_json(raw) == RetakeRequest(
        "m", ("p1",), datetime(2026, 1, 2, tzinfo=UTC)
    )


@pytest.mark.parametrize(
    "raw",
    [
        {"format": RETAKE_FORMAT + 1, "message": "from a newer service"},
        {"format": "1", "message": "m"},
        {"photo_ids": ["p1"]},
        {"message": "m", "photo_ids": "p1p2"},
        {"message": "m", "requested_at": "yesterday"},
    ],
)
def test_a_request_this_service_cannot_read_is_refused_saying_why(raw: dict[str, object]) -> None:
    # given a stored request of a newer format, or one that does not match its format
    # then reading it is refused, not guessed at
    with pytest.raises(RetakeRequestUnreadable):
        RetakeRequest.from_json(raw)
