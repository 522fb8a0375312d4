"""Test processes that run side by side never share a Redis database they flush."""

from __future__ import annotations

import pytest

from tests import services


def test_each_test_process_flushes_redis_databases_of_its_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # given the databases of the first and of the second test process
    taken = {}
    for worker in ("gw0", "gw1", "gw2"):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        taken[worker] = {services.redis_database(slot) for slot in range(services.REDIS_SLOTS)}
    # then no two processes share one, and each lies within a stock server's 16
    assert taken["gw0"].isdisjoint(taken["gw1"])
    assert taken["gw1"].isdisjoint(taken["gw2"])
    assert taken["gw0"].isdisjoint(taken["gw2"])
    assert all(0 <= database <= 15 for databases in taken.values() for database in databases)


def test_a_run_without_workers_uses_the_first_processs_databases(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert services.redis_database(0) == 3


def test_a_fourth_process_or_a_fifth_slot_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw3")
    with pytest.raises(RuntimeError, match="at most 3 test workers"):
        services.redis_database(0)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    with pytest.raises(ValueError, match="slots 0-3"):
        services.redis_database(services.REDIS_SLOTS)
