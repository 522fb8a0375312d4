"""An adjuster's retake request: one typed value, one JSON layout, read back as written."""

from __future__ import annotations

from datetime import UTC, datetime

from cdat.claims import RetakeRequest


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
