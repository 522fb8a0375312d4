"""Labels on a photo never cover one another."""

from __future__ import annotations

from cdat.label_layout import LabelSpot, place_labels


def test_labels_wanted_at_one_corner_stack_a_line_apart() -> None:
    # given three labels that all want the same corner
    spots = [LabelSpot(10, 50, 80, 12)] * 3
    # when they are placed
    placed = place_labels(spots, line=14)
    # then the first keeps its spot and each next one goes a line lower
    assert placed == [(10, 50), (10, 64), (10, 78)]


def test_labels_that_do_not_touch_stay_where_they_are() -> None:
    spots = [LabelSpot(10, 50, 80, 12), LabelSpot(200, 50, 80, 12), LabelSpot(10, 90, 80, 12)]
    assert place_labels(spots, line=14) == [(10, 50), (200, 50), (10, 90)]


def test_labels_never_go_past_the_limit() -> None:
    spots = [LabelSpot(0, 90, 50, 12)] * 3
    assert all(y <= 100 for _, y in place_labels(spots, line=14, limit=100))
