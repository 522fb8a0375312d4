"""The merge bench (bench/bench_merge.py): each rule timed on each photo's damages."""

from __future__ import annotations

from bench.bench_merge import rule_times
from cdat.findings import Box, DamageInstance, PhotoAnalysis
from cdat.taxonomy import CarPart, DamageType, Severity


def dent(x: float, side: float, confidence: float) -> DamageInstance:
    square = ((x, x), (x + side, x), (x + side, x + side), (x, x + side))
    box = Box(x, x, x + side, x + side)
    return DamageInstance(
        DamageType.DENT, Severity.MINOR, confidence, box, square, CarPart.HOOD, 0.1
    )


def test_each_rule_is_timed_on_every_photo_beside_the_photos_damages() -> None:
    # given a photo with a dent outlined twice, and one with no damage
    outlined = PhotoAnalysis("a", 200, 200, damages=(dent(10, 80, 0.9), dent(20, 50, 0.5)))
    intact = PhotoAnalysis("b", 200, 200)
    # when the rules are timed
    figures = rule_times([outlined, intact], rounds=2)
    # then each rule has its times, and the photos their damages
    assert figures["photos"] == 2 and figures["most_damages"] == 2
    assert figures["damages_per_photo"] == 1
    for rule in ("named_again", "seen_again", "merge_findings"):
        times = figures[rule]
        assert 0 <= times["median_ms"] <= times["max_ms"]
        assert times["mean_ms"] <= times["max_ms"]


def test_a_limit_or_rounds_under_one_is_an_error_line(capsys) -> None:
    from bench.bench_merge import get_args_parser, main

    # when the bench is asked for no photos, or no runs of each rule
    for bad in (["--limit", "0"], ["--rounds", "-1"]):
        # then it says so in one line and exits 2, before loading any model
        assert main(get_args_parser().parse_args(bad)) == 2
        assert capsys.readouterr().err == "error: --limit and --rounds must be positive\n"
