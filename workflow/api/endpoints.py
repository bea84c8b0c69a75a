"""Endpoints as plain functions: :func:`endpoint` fills in their engine and principal
and runs them where the database suits (:mod:`casework.workflow.api.offload`); a path or query
value with a NUL character is refused (422) before it reaches a database.

FastAPI solves each declared dependency per request at a cost above a short
request's own work, so an endpoint's ``engine`` comes from the application and its
``principal`` from the token cache; FastAPI sees the other parameters, and the
request. The OpenAPI document still names the security scheme on every ``/v1`` path
(:func:`casework.workflow.api.app.create_app`).

A route declared once with :func:`declare` is both FastAPI's route and, for the
requests it can take whole, the short way of :mod:`casework.workflow.api.hot_path`: the
same path, body model, role check, function, offload and error answers.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.routing import compile_path

from casework.workflow.api.offload import offload_for
from casework.workflow.api.security import allowed, principal_for
from casework.workflow.engine import Engine
from casework.workflow.errors import InvalidInput

T = TypeVar("T")
FILLED = ("engine", "principal", "connection")
"""Parameters an endpoint gets from here, not from FastAPI (``connection``: its group's
transaction, for a request run ``grouped``)."""
_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD


def endpoint(
    kind: str,
    *,
    reads: bool = False,
    needs: str | None = None,
    grouped: Callable[..., bool] | None = None,
) -> Callable[[Callable[..., T]], Callable[..., Any]]:
    """Run a plain endpoint as ``kind`` (``short``, ``long`` or ``health``) work, its
    ``engine`` and ``principal`` filled in; one that only ``reads`` (lists, reports,
    audit) is served by the standby of ``serve --read-db`` where there is one. A token
    whose role may not do what it ``needs`` (``write``...) is refused (403) first. A
    request that ``grouped`` accepts (asked with the engine and the endpoint's
    arguments) runs ``grouped``: its writes in a transaction shared with others, on
    the ``connection`` it is given."""

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
            if wants_principal or needs is not None:
                principal = await principal_for(request)
                if needs is not None:
                    allowed(principal, needs)
                if wants_principal:
                    values["principal"] = principal
            how = "grouped" if grouped is not None and grouped(engine, **values) else kind
            return await offload_for(engine).run(how, func, engine=engine, **values)

        run.__signature__ = signature.replace(parameters=shown)  # type: ignore[attr-defined]
        return run

    return wrap


@dataclass(frozen=True)
class Declared:
    """A route as :func:`declare` made it: what the short way needs to take it."""

    route: APIRoute
    """FastAPI's route: its path and method match, its ``endpoint`` is what both ways
    call, with the path parameters, the body and ``request``."""
    body: str
    """The name of the body's parameter."""
    model: type[BaseModel]
    """The body's model."""


def declare(
    router: APIRouter,
    method: str,
    path: str,
    func: Callable[..., Any],
    kind: str,
    *,
    needs: str | None = None,
    grouped: Callable[..., bool] | None = None,
    **described: Any,
) -> Declared:
    """Declare ``func`` the route ``method path`` of ``router``, run as :func:`endpoint`
    runs it; ``described`` are FastAPI's route arguments (``response_model``,
    ``summary``..., its OpenAPI description). ``func`` takes the path's parameters (as
    text), one body model, and besides those only ``request``, ``engine``,
    ``principal`` and ``connection`` (for the requests ``grouped`` accepts): what the
    short way passes."""
    signature = inspect.signature(func, eval_str=True)
    _, _, convertors = compile_path(path)
    bodies = [
        (name, p.annotation)
        for name, p in signature.parameters.items()
        if isinstance(p.annotation, type) and issubclass(p.annotation, BaseModel)
    ]
    others = set(signature.parameters) - {*convertors, *FILLED, "request"}
    if (
        len(bodies) != 1
        or others != {bodies[0][0]}
        or any(signature.parameters[name].annotation is not str for name in convertors)
    ):
        raise TypeError(f"{func.__name__}: take text path parameters and one body model only")
    run = endpoint(kind, needs=needs, grouped=grouped)(func)
    router.add_api_route(path, run, methods=[method], **described)
    route = router.routes[-1]
    assert isinstance(route, APIRoute)
    return Declared(route, *bodies[0])
