"""Prometheus metrics for the API process.

Request metrics are counted in-process. Job states, queue depth, assessment
durations and model stage latencies are read from the shared database and broker
at scrape time, so one scrape of any API replica sees the whole fleet's work.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response

from cdat.record import decode
from mobile_api.runtime import Runtime
from mobile_api.storage import models

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
RECENT_JOBS = 200


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Histogram(
            "cdat_http_request_duration_seconds",
            "API request latency by route",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.photos_rejected = Counter(
            "cdat_photos_rejected_total",
            "Uploaded photos refused, by reason code",
            ["reason"],
            registry=self.registry,
        )

    def watch(self, rt: Runtime) -> None:
        """Report the fleet's jobs and queues through this runtime's database and broker."""
        self.registry.register(FleetCollector(rt))


def route_of(request: Request) -> str:
    """The route template (`/v1/claims/{claim_id}`), never the raw path: bounded label values."""
    route = request.scope.get("route")
    return str(getattr(route, "path", "unmatched"))


def timing_middleware(
    metrics: Metrics,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            metrics.requests.labels(request.method, route_of(request), str(status)).observe(
                time.perf_counter() - started
            )

    return middleware


class FleetCollector(Collector):
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    def collect(self) -> Iterator[Metric]:
        yield self._jobs_by_state()
        yield self._queue_depth()
        durations, stages = self._recent_work()
        yield durations
        yield stages

    def _jobs_by_state(self) -> Metric:
        family = GaugeMetricFamily("cdat_jobs", "Assessment jobs by state", labels=["state"])
        with self.rt.sessions() as session:
            rows = session.execute(
                select(models.Job.state, func.count()).group_by(models.Job.state)
            ).all()
        counts = {state: 0 for state in ("queued", "running", "succeeded", "failed")}
        counts.update({state: count for state, count in rows})
        for state, count in counts.items():
            family.add_metric([state], count)
        return family

    def _queue_depth(self) -> Metric:
        family = GaugeMetricFamily(
            "cdat_queue_depth", "Messages waiting in each broker queue", labels=["queue"]
        )
        for queue, depth in queue_depths().items():
            family.add_metric([queue], depth)
        return family

    def _recent_work(self) -> tuple[Metric, Metric]:
        since = datetime.now(UTC) - timedelta(hours=1)
        with self.rt.sessions() as session:
            jobs = session.execute(
                select(models.Job.started_at, models.Job.finished_at)
                .where(models.Job.state == "succeeded", models.Job.finished_at >= since)
                .order_by(models.Job.finished_at.desc())
                .limit(RECENT_JOBS)
            ).all()
            bodies = session.scalars(
                select(models.AssessmentRecord.body)
                .order_by(models.AssessmentRecord.id.desc())
                .limit(50)
            ).all()
        return _duration_family(list(jobs)), _stage_family(list(bodies))


def _quantiles(values: list[float]) -> dict[str, float]:
    if len(values) < 2:
        return {"0.5": values[0], "0.95": values[0]} if values else {}
    cuts = statistics.quantiles(values, n=20, method="inclusive")
    return {"0.5": statistics.median(values), "0.95": cuts[18]}


def _duration_family(jobs: list[Any]) -> Metric:
    family = GaugeMetricFamily(
        "cdat_assessment_duration_seconds",
        "Job run time of recent finished assessments (last hour, latest 200)",
        labels=["quantile"],
    )
    values = [
        (_aware(done) - _aware(start)).total_seconds() for start, done in jobs if start and done
    ]
    for quantile, value in _quantiles(values).items():
        family.add_metric([quantile], value)
    return family


def _stage_family(bodies: list[dict[str, Any]]) -> Metric:
    family = GaugeMetricFamily(
        "cdat_model_stage_latency_ms",
        "Per-photo latency of each pipeline stage over the latest 50 assessments",
        labels=["stage", "quantile"],
    )
    per_stage: dict[str, list[float]] = {}
    for body in bodies:
        for photo in decode(body).photos:
            for stage, value in photo.timings_ms.items():
                per_stage.setdefault(stage, []).append(value)
    for stage, values in sorted(per_stage.items()):
        for quantile, value in _quantiles(values).items():
            family.add_metric([stage, quantile], value)
    return family


def _aware(moment: datetime) -> datetime:
    # SQLite hands back naive datetimes for values that were stored as UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def queue_depths() -> dict[str, int]:
    from mobile_api.worker.celery_app import ASSESS_QUEUE, EVENTS_QUEUE, celery

    depths: dict[str, int] = {}
    try:
        with celery.connection_for_read() as connection:
            channel = connection.default_channel
            for queue in (ASSESS_QUEUE, EVENTS_QUEUE):
                depths[queue] = channel.queue_declare(queue=queue, passive=True).message_count
    except Exception:
        return {}  # an unreachable broker shows in readiness; metrics stay scrapeable
    return depths
