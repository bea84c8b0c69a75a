"""The FastAPI application: routes, problem answers, metrics, one engine per process."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from casework.workflow.api import (
    admin,
    audit,
    cases,
    contract,
    evidence,
    health,
    partners,
    problems,
)
from casework.workflow.api.hot_path import HotPath
from casework.workflow.api.limits import ATTACHMENTS, MAX_BODY, BodyLimit
from casework.workflow.api.metrics import Measured, Metrics
from casework.workflow.api.security import SCHEME, Principals
from casework.workflow.console import pages
from casework.workflow.engine import Engine

DESCRIPTION = """Customer complaints as persisted state machines: open a case, fire its
events, read its history and SLA clocks, verify and export the tamper-evident history.

Every `/v1` path needs `Authorization: Bearer <token>` (`casework tokens create`); the
actor of what a request records is the token's. Errors are RFC 9457 problem details
(`application/problem+json`) carrying the error's context. Every `POST` takes an
`Idempotency-Key`; `POST /v1/cases/{id}/events` takes `If-Match` with a case's `ETag`
(412 when the case moved on). Webhook deliveries are described under `webhooks`.
"""


def operation_id(route: APIRoute) -> str:
    """An operation's id: its function's name (``open_case``, ``apply_event``...)."""
    return route.name


def create_app(
    engine: Engine, *, heartbeat_s: float = 60.0, read_engine: Engine | None = None
) -> Any:
    """The ASGI application serving ``engine`` (which stays the caller's to close); lists,
    reports and audit reads go to ``read_engine`` (a hot standby) where given."""
    app = FastAPI(
        title="casework",
        version="1",
        description=DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url=None,  # the bundled viewers load scripts from a CDN
        redoc_url=None,
        generate_unique_id_function=operation_id,
    )
    app.state.engine = engine
    app.state.read_engine = read_engine
    app.state.heartbeat_s = heartbeat_s
    app.state.metrics = Metrics(engine, read_engine)
    app.state.principals = Principals()
    problems.install(app)
    for module in (cases, audit, admin, partners, evidence, health):
        app.include_router(module.router)
    app.include_router(pages.router)
    from casework.workflow.survey.pages import router as survey_router  # the customers' page

    app.include_router(survey_router)
    app.mount(
        "/static", StaticFiles(packages=[("casework.workflow.console", "static")]), name="static"
    )

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title, version=app.version, description=app.description,
                routes=app.routes,
            )  # fmt: skip
            document.setdefault("components", {})["securitySchemes"] = {"token": SCHEME}
            for path, operations in document["paths"].items():
                if path.startswith("/v1/"):
                    for operation in operations.values():
                        operation["security"] = [{"token": []}]
            app.openapi_schema = contract.complete(document, engine)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]

    attachments = ("POST", ATTACHMENTS, engine.settings.max_attachment_bytes,
                   "limits.max_attachment_bytes")  # fmt: skip
    limited = BodyLimit(HotPath(app, [cases.fire]), MAX_BODY, [attachments])
    return Measured(limited, app.state.metrics)
