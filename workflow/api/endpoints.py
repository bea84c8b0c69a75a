"""Endpoints as plain functions: :func:`endpoint` fills in their engine and principal
and runs them where the database suits (:mod:`casework.workflow.api.offload`); a path or query
value with a NUL character is refused (422) before it reaches a database.

FastAPI solves each declared dependency per request at a cost above a short
request's own work, so an endpoint's ``engine`` comes from the application and its
``principal`` from the token cache; FastAPI sees the other parameters, and the
request. The OpenAPI document still names the security scheme on every ``/v1`` path
(:func:`casework.workflow.api.app.create_app`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request

from casework.workflow.api.offload import offload_for
from casework.workflow.api.security import principal_for
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput

T = TypeVar("T")
FILLED = ("engine", "principal")
"""Parameters an endpoint gets from here, not from FastAPI."""
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def endpoint(kind: str, *, reads: bool = False) -> Callable[[Callable[..., T]], Callable[..., Any]]:
    """Run a plain endpoint as ``kind`` (``short``, ``long`` or ``health``) work, its
    ``engine`` and ``principal`` filled in; one that only ``reads`` (lists, reports,
    audit) is served by the standby of ``serve --read-db`` where there is one."""

    def wrap(func: Callable[..., T]) -> Callable[..., Any]:
        signature = inspect.signature(func, eval_str=True)
        takes_request = "request" in signature.parameters
        wants_principal = "principal" in signature.parameters
        shown = [p for name, p in signature.parameters.items() if name not in FILLED]
        if not takes_request:
            shown.insert(0, inspect.Parameter("request", _POSITIONAL, annotation=Request))

        @functools.wraps(func)
        async def run(**values: Any) -> T:
            for name, value in values.items():
                if isinstance(value, str) and "\x00" in value:  # no database holds NUL text
                    raise InvalidInput(f"{name} contains a NUL character", field=name)
            request = values["request"] if takes_request else values.pop("request")
            state = request.app.state
            engine: Engine = (state.read_engine or state.engine) if reads else state.engine
            if wants_principal:
                values["principal"] = await principal_for(request)
            return await offload_for(engine).run(kind, func, engine=engine, **values)

        run.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        return run

    return wrap
