"""Leased work in the database: take, renew, finish, hand back with a back-off, and sweep.

Assessment jobs (`jobs`) and webhook deliveries (`deliveries`) are rows a worker holds
under a lease: taken from `waiting` (or from `working` when the lease ran out), renewed
while the work runs, finished, handed back to wait for a retry, or swept back to `waiting`
when the worker died or its message was lost. Two rules keep that right under any
interleaving of workers and sweeps (`tests/queues/test_short_lease.py`):

* Claim first. Every write takes the claim's lock (`claim_store.lock_claim`) before it
  touches the row, the order the claim's own writers use. Taking the row first (as the
  sweep and acquire once did) deadlocked against completion on PostgreSQL.
* Compare-and-set on what was read. Each take bumps `attempts`, which is the run's fencing
  token: a renew, finish or hand-back changes the row only while it is `working` under that
  attempt, and the sweep only while the row is still in the state and attempt it read. A
  run whose lease was taken over writes nothing; a finished row is never swept back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select, update
from sqlalchemy.orm import Session

from cdat.settings import Settings
from mobile_api.runtime import Runtime
from mobile_api.storage import models
from mobile_api.storage.claim_store import lock_claim
from mobile_api.storage.db import transaction


class LeaseLost(Exception):
    """The run's lease was taken over (or its row finished) before it could write."""


def now() -> datetime:
    return datetime.now(UTC)


def backoff(base_seconds: float, attempt: int) -> float:
    """Exponential back-off before retry number `attempt` (1, 2, 4 ... times the base)."""
    return base_seconds * 2 ** max(attempt - 1, 0)


@dataclass(frozen=True)
class Queue:
    """One table of leased work: its states and the settings that time it."""

    model: type[models.Job] | type[models.WebhookDelivery]
    """A table with `id`, `claim_id`, `state`, `attempts` and `lease_until` columns."""
    waiting: str
    working: str
    waiting_since: str
    """The column saying since when a waiting row is due (its message should be on its way)."""
    lease_seconds: Callable[[Settings], float]
    max_attempts: Callable[[Settings], int]

    def column(self, name: str) -> Any:
        return getattr(self.model, name)


@dataclass(frozen=True)
class Lease:
    """A run's hold on one row; `attempt` is its fencing token."""

    id: str
    claim_id: str
    attempt: int


@dataclass(frozen=True)
class Seen:
    """A row as the sweep read it, before it locked anything."""

    id: str
    claim_id: str
    state: str
    attempts: int


def change(
    session: Session,
    queue: Queue,
    row_id: str,
    when: ColumnElement[bool],
    **values: Any,
) -> bool:
    """The one write to a leased row: an UPDATE that happens only if `when` still holds."""
    moved = session.execute(
        update(queue.model)
        .where(queue.column("id") == row_id, when)
        .values(**values)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    return bool(moved)


def held_by(queue: Queue, lease: Lease) -> ColumnElement[bool]:
    return and_(queue.column("state") == queue.working, queue.column("attempts") == lease.attempt)


def lock(session: Session, queue: Queue, row_id: str) -> tuple[Any, models.Claim] | None:
    """The row and its claim, the claim locked first; None if there is no such row."""
    claim_id = session.scalar(select(queue.column("claim_id")).where(queue.column("id") == row_id))
    if claim_id is None:
        return None
    claim = lock_claim(session, claim_id)
    return session.get_one(queue.model, row_id, populate_existing=True), claim


def take(
    session: Session, queue: Queue, settings: Settings, row_id: str, **values: Any
) -> tuple[Lease, Any, models.Claim] | None:
    """Lease the row to this run, inside the caller's transaction; None if it is not free."""
    locked = lock(session, queue, row_id)
    if locked is None:
        return None
    row, claim = locked
    at = now()
    free = or_(
        queue.column("state") == queue.waiting,
        and_(queue.column("state") == queue.working, queue.column("lease_until") < at),
    )
    taken = change(
        session,
        queue,
        row_id,
        free,
        state=queue.working,
        lease_until=at + timedelta(seconds=queue.lease_seconds(settings)),
        attempts=queue.column("attempts") + 1,
        **values,
    )
    if not taken:
        return None
    session.refresh(row)
    return Lease(row.id, row.claim_id, row.attempts), row, claim


@contextmanager
def holding(rt: Runtime, queue: Queue, lease: Lease) -> Iterator[tuple[Session, Any, models.Claim]]:
    """A transaction in which the run still holds its lease; LeaseLost if it does not."""
    with transaction(rt.sessions) as session:
        row, claim = check_held(session, queue, lease)
        yield session, row, claim


def check_held(session: Session, queue: Queue, lease: Lease) -> tuple[Any, models.Claim]:
    """Lock the claim, then the row must still be this run's: LeaseLost otherwise.

    Every writer of the row takes the claim lock first, so it stays this run's until the
    caller's transaction ends.
    """
    locked = lock(session, queue, lease.id)
    if locked is None:
        raise LeaseLost(f"{lease.id} is gone")
    row, claim = locked
    if row.state != queue.working or row.attempts != lease.attempt:
        raise LeaseLost(f"{lease.id} attempt {lease.attempt} no longer holds its lease")
    return row, claim


def renew(rt: Runtime, queue: Queue, lease: Lease) -> bool:
    """Extend the run's lease; False when it was lost (the run should stop writing)."""
    until = now() + timedelta(seconds=queue.lease_seconds(rt.settings))
    with transaction(rt.sessions) as session:
        lock_claim(session, lease.claim_id)
        return change(session, queue, lease.id, held_by(queue, lease), lease_until=until)


def finish(session: Session, queue: Queue, lease: Lease, state: str, **values: Any) -> bool:
    """End the run's hold with `state`; the caller's transaction holds the claim lock."""
    return change(
        session, queue, lease.id, held_by(queue, lease), state=state, lease_until=None, **values
    )


def hand_back(session: Session, queue: Queue, lease: Lease, delay_s: float, **values: Any) -> bool:
    """Back to waiting, due after `delay_s`, for a retry; the caller holds the claim lock."""
    due = {queue.waiting_since: now() + timedelta(seconds=delay_s), **values}
    return change(
        session,
        queue,
        lease.id,
        held_by(queue, lease),
        state=queue.waiting,
        lease_until=None,
        **due,
    )


GiveUp = Callable[[Session, Seen, models.Claim, ColumnElement[bool]], bool]
"""Fail a swept row that used all its attempts, only while the condition still holds."""


def sweep(rt: Runtime, queue: Queue, give_up: GiveUp) -> list[str]:
    """Rows whose worker died (lease ran out) or whose message was lost; returns ids to resend.

    Each row is decided in its own transaction, claim locked first, and changed only from
    the state and attempt the sweep read. A row that has used all its attempts is handed
    to `give_up`, which fails it the one way its queue fails rows.
    """
    at = now()
    lease = timedelta(seconds=queue.lease_seconds(rt.settings))
    stale = or_(
        and_(queue.column("state") == queue.working, queue.column("lease_until") < at),
        and_(
            queue.column("state") == queue.waiting,
            queue.column(queue.waiting_since) < at - lease,
        ),
    )
    with rt.sessions() as session:
        seen = [
            Seen(*row)
            for row in session.execute(
                select(
                    queue.column("id"),
                    queue.column("claim_id"),
                    queue.column("state"),
                    queue.column("attempts"),
                ).where(stale)
            )
        ]
    resend: list[str] = []
    for row in seen:
        unchanged = and_(
            queue.column("state") == row.state, queue.column("attempts") == row.attempts, stale
        )
        with transaction(rt.sessions) as session:
            claim = lock_claim(session, row.claim_id)
            if row.attempts >= queue.max_attempts(rt.settings):
                give_up(session, row, claim, unchanged)
                continue
            # Due now: the next sweep leaves it alone for a whole lease, so it is sent once.
            values = {queue.waiting_since: at}
            if change(
                session, queue, row.id, unchanged, state=queue.waiting, lease_until=None, **values
            ):
                resend.append(row.id)
    return resend
