"""``/metrics``: Prometheus text of the requests this process served, the transitions it
made, and what the database holds (deadlines pending and overdue, fire lag, outbox by
kind and status, dead letters, the oldest pending mail, the worker's heartbeat).

Figures read from the database are read at each scrape, so every ``serve`` process
answers the same; request and transition counts are per process, summed over the
processes of one ``serve --workers N`` through prometheus-client's multiprocess mode
(``PROMETHEUS_MULTIPROC_DIR``, which ``casework serve`` sets).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

from casework.storage.replication import standby_lags
from casework.workflow.api.offload import offload_for
from casework.workflow.engine import Engine

LAG_BOUNDS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 21600.0, 86400.0)
"""Fire-lag histogram bounds in seconds: from on time to a day late (after downtime)."""
LATENCY_BOUNDS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class DatabaseFigures(Collector):
    """The figures read from the database at each scrape."""

    def __init__(self, engine: Engine, reader: Engine | None = None) -> None:
        self.engine = engine
        self.reader = reader

    def collect(self) -> Iterator[Metric]:
        now = self.engine.clock.now()
        figures = self.engine.context.store.service.figures(now, LAG_BOUNDS)
        yield GaugeMetricFamily(
            "casework_deadlines_pending", "Deadlines waiting to fire.", figures.deadlines_pending
        )
        yield GaugeMetricFamily(
            "casework_deadlines_overdue",
            "Pending deadlines already due (the worker is behind or stopped).",
            figures.deadlines_overdue,
        )
        buckets = [(str(b), n) for b, n in figures.fire_lag_buckets]
        buckets.append(("+Inf", figures.fire_lag_count))
        yield HistogramMetricFamily(
            "casework_fire_lag_seconds",
            "How late deadlines fired: from due to fired.",
            buckets=buckets,
            sum_value=figures.fire_lag_sum,
        )
        items = GaugeMetricFamily(
            "casework_outbox_items", "Outbox rows by kind and status.", labels=["kind", "status"]
        )
        dead = GaugeMetricFamily("casework_dead_letters", "Dead letters by kind.", labels=["kind"])
        for (kind, status), count in sorted(figures.outbox.items()):
            items.add_metric([kind, status], count)
        for kind in sorted({k for k, _ in figures.outbox}):
            dead.add_metric([kind], figures.outbox.get((kind, "dead"), 0))
        yield items
        yield dead
        oldest = figures.oldest_pending_mail
        yield GaugeMetricFamily(
            "casework_oldest_pending_mail_age_seconds",
            "Age of the oldest mail not yet sent (0 when none waits).",
            0.0 if oldest is None else max(0.0, (now - oldest).total_seconds()),
        )
        lag = GaugeMetricFamily(
            "casework_replication_lag_seconds",
            "How far a hot standby's replay lags its primary, by standby.",
            labels=["standby"],
        )
        for name, seconds in self._lags():
            lag.add_metric([name], seconds)
        yield lag
        age = self.engine.worker_age()
        yield GaugeMetricFamily(
            "casework_worker_heartbeat_age_seconds",
            "Seconds since a worker last woke (-1: no worker ever ran).",
            -1.0 if age is None else max(0.0, age),
        )

    def _lags(self) -> list[tuple[str, float]]:
        """Each standby's lag: the read standby's own, or the primary's standbys'."""
        engine = self.reader or self.engine
        found = engine.context.store.audit.replication()
        return [] if found is None else standby_lags(found)


class GroupCommits(Collector):
    """The commits this process shared among events (SQLite's group commit)."""

    def __init__(self, engine: Engine) -> None:
        self.group = offload_for(engine).group

    def collect(self) -> Iterator[Metric]:
        if self.group is None:
            return
        yield CounterMetricFamily(
            "casework_group_commits",
            "Commits shared by more than one event, by this process.",
            self.group.commits,
        )
        yield CounterMetricFamily(
            "casework_group_commit_events",
            "Events stored by those shared commits.",
            self.group.writes,
        )


class Metrics:
    """The metrics of one application."""

    def __init__(self, engine: Engine, reader: Engine | None = None) -> None:
        self.registry = CollectorRegistry()
        self.database = DatabaseFigures(engine, reader)
        self.registry.register(self.database)
        self.groups = GroupCommits(engine)
        self.registry.register(self.groups)
        self.requests = Counter(
            "casework_http_requests",
            "HTTP requests by route, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "casework_http_request_duration_seconds",
            "HTTP request latency by route and method.",
            ["route", "method"],
            buckets=LATENCY_BOUNDS,
            registry=self.registry,
        )
        self.transitions = Counter(
            "casework_transitions",
            "Events recorded through this API, by event.",
            ["event"],
            registry=self.registry,
        )
        self._transitions: dict[str, Any] = {}

    def transition(self, event: str) -> None:
        """Count an event recorded through this API (each event's counter found once)."""
        counter = self._transitions.get(event)
        if counter is None:
            counter = self._transitions[event] = self.transitions.labels(event)
        counter.inc()

    def exposition(self) -> tuple[bytes, str]:
        """The text format and its content type."""
        registry = self.registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            registry.register(self.database)
            registry.register(self.groups)
        return generate_latest(registry), CONTENT_TYPE_LATEST


class Measured:
    """ASGI middleware: counts and times every HTTP request by its route template."""

    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def sending(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        await self.app(scope, receive, sending)
        route = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        key = (template, scope.get("method", ""), status[0])
        children = self._children.get(key)
        if children is None:
            children = self._children[key] = (
                self.metrics.requests.labels(key[0], key[1], str(key[2])),
                self.metrics.latency.labels(key[0], key[1]),
            )
        children[0].inc()
        children[1].observe(time.perf_counter() - started)
