"""Broken catalog, rule and policy files fail at load, naming file, line and field."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cdat.datafiles import DataFileError
from cdat.errors import ConfigurationError
from cdat.pipeline import load_policy
from tests.cdat.conftest import settings, shipped_data_dir


def _override(tmp_path: Path, relative: str, old: str, new: str) -> tuple[Path, int]:
    """Copy a shipped file into a catalog dir with one edit; return it and the edited line."""
    source = (shipped_data_dir() / relative).read_text()
    assert old in source, f"test setup: {old!r} not in {relative}"
    edited = source.replace(old, new, 1)
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(edited)
    line = edited[: edited.index(new)].count("\n") + 1 if new else 0
    return target, line


def _load_error(tmp_path: Path, **kw: object) -> DataFileError:
    with pytest.raises(DataFileError) as caught:
        load_policy(settings(catalog_dir=tmp_path, **kw))
    return caught.value


def test_bad_value_names_file_line_and_field(tmp_path: Path) -> None:
    # given a catalog whose default-region parts tax is over 100%
    path, line = _override(
        tmp_path, "catalogs/INR.yaml", "tax: {parts_pct: 28,", "tax: {parts_pct: 128,"
    )
    # when the policy is loaded
    error = _load_error(tmp_path)
    # then the error points at that file, line and field
    assert error.file == path
    assert error.line == line
    assert error.field == "regions.default.tax.parts_pct"
    assert f"{path}, line {line}" in error.message


def test_unknown_field_in_a_rule_is_reported_at_its_line(tmp_path: Path) -> None:
    # given a typo (`operaton`) in the third rule
    path, line = _override(
        tmp_path,
        "rules.yaml",
        "    operation: replace\n  - id: TYRE",
        "    operaton: replace\n  - id: TYRE",
    )
    error = _load_error(tmp_path)
    assert error.file == path
    assert error.line == line
    assert error.field.startswith("rules.2.")


def test_invalid_yaml_reports_the_line(tmp_path: Path) -> None:
    path, line = _override(tmp_path, "triage.yaml", "min_confidence: 0.6", "min_confidence: [0.6")
    error = _load_error(tmp_path)
    assert error.file == path
    assert error.line is not None and error.line >= line
    assert "not valid YAML" in error.message


def test_missing_part_price_is_named(tmp_path: Path) -> None:
    _override(
        tmp_path,
        "catalogs/USD.yaml",
        "wheel:\n    prices: {economy: 180, ",
        "wheel:\n    prices: {",
    )
    error = _load_error(tmp_path, currency="USD")
    assert error.field == "parts.wheel.prices"
    assert "economy" in error.problem


def test_rules_without_catch_all_are_rejected(tmp_path: Path) -> None:
    source = (shipped_data_dir() / "rules.yaml").read_text()
    start = source.index("  - id: OTHER-DAMAGE-REPAIR")
    end = source.index("\n\n", start)
    (tmp_path / "rules.yaml").write_text(source[:start] + source[end + 1 :])
    error = _load_error(tmp_path)
    assert error.field == "rules"
    assert "no rule matches" in error.problem


def test_rules_whose_catch_all_replaces_are_rejected(tmp_path: Path) -> None:
    # given a rule book whose last word on any damage is a new part
    _override(
        tmp_path,
        "rules.yaml",
        "description: Catch-all; damage with no specific rule is quoted as body repair hours\n"
        "    operation: repair",
        "description: Catch-all; damage with no specific rule is quoted as body repair hours\n"
        "    operation: replace",
    )
    # then a finding too unsure to decide a replacement would have no price: refused at load
    error = _load_error(tmp_path)
    assert error.field == "rules"
    assert "only rules that replace match" in error.problem


def test_rule_making_cost_fall_with_severity_is_rejected(tmp_path: Path) -> None:
    # given moderate broken parts polished instead of replaced: cheaper than a minor break
    _override(
        tmp_path,
        "rules.yaml",
        "description: A part broken beyond a minor crack is replaced\n    "
        "when: {damage_types: [broken_part], severities: [moderate, severe]}\n"
        "    operation: replace",
        "description: A part broken beyond a minor crack is replaced\n    "
        "when: {damage_types: [broken_part], severities: [moderate, severe]}\n"
        "    operation: refinish",
    )
    error = _load_error(tmp_path)
    assert "must not fall as severity rises" in error.problem
    assert error.field.startswith("rules.")


def test_repair_hours_falling_with_severity_are_rejected(tmp_path: Path) -> None:
    path, _ = _override(tmp_path, "rules.yaml", "severe: {base: 4.0,", "severe: {base: 2.0,")
    error = _load_error(tmp_path)
    assert error.field == "repair_hours"
    assert error.line == path.read_text().split("\n").index("repair_hours:") + 1
    assert "must not fall" in error.problem


def test_unknown_region_is_reported(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as caught:
        load_policy(settings(region="atlantis"))
    assert caught.value.field == "regions"
    assert "atlantis" in caught.value.problem


def test_triage_policy_without_limit_for_currency(tmp_path: Path) -> None:
    _override(tmp_path, "triage.yaml", "  USD: 3000\n", "")
    error = _load_error(tmp_path, currency="USD")
    assert error.field == "straight_through_limit"


def test_currency_without_catalog_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match=r"catalogs/EUR\.yaml"):
        load_policy(settings(currency="EUR"))


def test_missing_catalog_dir_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="not a directory"):
        load_policy(settings(catalog_dir=tmp_path / "nowhere"))


def test_insurer_files_replace_shipped_ones_file_by_file(tmp_path: Path) -> None:
    # given a catalog dir holding only an edited triage policy
    shutil.copy(shipped_data_dir() / "triage.yaml", tmp_path / "triage.yaml")
    _override(tmp_path, "triage.yaml", "min_confidence: 0.6", "min_confidence: 0.75")
    # when loaded
    policy = load_policy(settings(catalog_dir=tmp_path))
    # then triage comes from the insurer, catalog and rules from the shipped defaults
    assert policy.triage.min_confidence == 0.75
    assert policy.sources["triage"] == tmp_path / "triage.yaml"
    assert policy.sources["rules"] == shipped_data_dir() / "rules.yaml"


def _count_pricing(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The regions whose every finding was priced by the monotone check, in this test; the
    process starts with nothing checked."""
    import cdat.policy_checks as checks
    from cdat.catalog import Catalog
    from cdat.datafiles import DataFile
    from cdat.rules import RuleBook

    priced: list[str] = []
    real = checks.check_severity_monotone

    def counted(rules: RuleBook, catalog: Catalog, region: str, file: DataFile) -> None:
        priced.append(region)
        real(rules, catalog, region, file)

    monkeypatch.setattr(checks, "check_severity_monotone", counted)
    monkeypatch.setattr(checks, "_PASSED", set())
    return priced


def _new_process(monkeypatch: pytest.MonkeyPatch) -> None:
    import cdat.policy_checks as checks

    monkeypatch.setattr(checks, "_PASSED", set())


def test_the_same_policy_is_checked_once_a_process_and_a_bad_one_every_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    priced = _count_pricing(monkeypatch)
    cache = tmp_path / "cache"
    # given the shipped policy loaded twice in one process (two runtimes)
    load_policy(settings(cache_dir=cache))
    load_policy(settings(cache_dir=cache))
    # then its every finding was priced once
    assert priced == ["default"]
    # and a rule book that makes a cost fall is refused on every load, not only the first
    replaced = "severities: [moderate, severe]}\n    operation: replace"
    _override(tmp_path / "bad", "rules.yaml", replaced, replaced.replace("replace", "refinish"))
    for _ in range(2):
        assert "must not fall" in _load_error(tmp_path / "bad", cache_dir=cache).problem
        _new_process(monkeypatch)
    assert priced == ["default", "default", "default"]


def test_a_passed_policy_is_remembered_for_the_next_process_with_the_same_files_and_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cdat.policy_checks as checks

    priced = _count_pricing(monkeypatch)
    cache = tmp_path / "cache"
    # given the shipped policy checked by one process (a `cdat assess`)
    load_policy(settings(cache_dir=cache))
    # when a second process loads it with the same cache
    _new_process(monkeypatch)
    load_policy(settings(cache_dir=cache))
    # then it trusts the first one's check
    assert priced == ["default"]
    # but not with another cache, another region's prices, edited rules, or other code
    _new_process(monkeypatch)
    load_policy(settings(cache_dir=tmp_path / "other-cache"))
    _new_process(monkeypatch)
    load_policy(settings(cache_dir=cache, region="metro"))
    _new_process(monkeypatch)
    _override(tmp_path / "edited", "rules.yaml", "fraction: 0.5", "fraction: 0.4")
    load_policy(settings(cache_dir=cache, catalog_dir=tmp_path / "edited"))
    _new_process(monkeypatch)
    monkeypatch.setattr(checks, "_code_digest", lambda: "another version of cdat")
    load_policy(settings(cache_dir=cache))
    assert priced == ["default", "default", "metro", "default", "default"]


def test_a_cache_that_cannot_be_written_costs_only_the_next_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    priced = _count_pricing(monkeypatch)
    # given a cache dir that is a file, so nothing can be written under it
    blocked = tmp_path / "cache"
    blocked.write_text("not a folder")
    # when two processes load the shipped policy
    policy = load_policy(settings(cache_dir=blocked))
    _new_process(monkeypatch)
    load_policy(settings(cache_dir=blocked))
    # then both load it, each after its own check
    assert policy.region == "default"
    assert priced == ["default", "default"]
