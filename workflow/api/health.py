"""``/healthz`` (the process lives), ``/readyz`` (this process can serve: database
reachable, schema current, standby reads fresh; ``?worker=1`` adds a worker's heartbeat)
and ``/metrics``; none needs a token."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from casework.storage.migrate import HEAD, current_revision
from casework.storage.replication import standby_lags
from casework.workflow.api import models
from casework.workflow.api.endpoints import endpoint
from casework.workflow.api.responses import Json
from casework.workflow.api.security import Served
from casework.workflow.engine import Engine

router = APIRouter(tags=["operations"])


@router.get("/healthz", response_model=models.Health, summary="The process lives")
async def healthz() -> Json:
    """Always ``ok`` while the process answers."""
    return Json({"status": "ok", "checks": {}})


@router.get(
    "/readyz",
    response_model=models.Health,
    responses={503: {"model": models.Health, "description": "A check failed."}},
    summary="Ready to serve",
)
@endpoint("health")  # never queued behind a burst
def readyz(
    request: Request,
    engine: Served,
    worker: bool = Query(False, description="Also require a worker's heartbeat within the limit."),
) -> Json:
    """``ok`` when this process can serve: the database answers, its schema is current
    and the standby it reads from (``serve --read-db``) is fresh; 503 naming the failed
    check otherwise. A stopped worker does not take the API away: with ``worker=1`` a
    worker must also have woken within the heartbeat limit (``serve --heartbeat-s``)."""
    limit: float = request.app.state.heartbeat_s
    checks: dict[str, Any] = {}
    try:
        revision = current_revision(engine.db)
        checks["database"] = "ok"
        checks["schema"] = "ok" if revision == HEAD else f"at {revision}, code needs {HEAD}"
        age = engine.worker_age() if worker else None
    except Exception as err:  # any failure to reach the database is what this reports
        checks["database"] = f"unreachable: {type(err).__name__}"
        age = None
    if worker:
        checks["worker"] = _worker_check(age, limit)
    replication = _replication(request, limit)
    if replication is not None:
        checks["replication"] = replication.pop("check")
    ready = all(v == "ok" for v in checks.values())
    body: dict[str, Any] = {"status": "ok" if ready else "unavailable", "checks": checks}
    if replication is not None:
        body["replication"] = replication
    return Json(body, 200 if ready else 503)


def _worker_check(age: float | None, limit: float) -> str:
    """``ok``, or how long ago a worker last woke (``None``: none recorded)."""
    if age is None:
        return "no worker heartbeat recorded: is the worker running?"
    return "ok" if age <= limit else f"last heartbeat {age:.0f}s ago (limit {limit:.0f}s)"


def _replication(request: Request, limit: float) -> dict[str, Any] | None:
    """The standby reads come from (``serve --read-db``), or the primary's standbys: the
    lag of each, ``ok`` while none lags more than ``limit`` seconds."""
    state = request.app.state
    engine: Engine = state.read_engine or state.engine
    try:
        found = engine.context.store.audit.replication()
    except Exception as err:  # the standby is down: reads fail, so not ready
        return {"check": f"standby unreachable: {type(err).__name__}"}
    if found is None:
        return None
    worst = max((lag for _, lag in standby_lags(found)), default=0.0)
    found["check"] = "ok" if worst <= limit else f"a standby lags {worst:.0f}s (limit {limit:.0f}s)"
    if found.get("replayed_at") is not None:
        found["replayed_at"] = found["replayed_at"].isoformat()
    return found


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format."}},
    summary="Prometheus metrics",
)
@endpoint("long")
def metrics(request: Request, engine: Served) -> Response:
    """Prometheus text format; serve it on a private network only."""
    text, content_type = request.app.state.metrics.exposition()
    return Response(text, media_type=content_type)
