"""Who a request speaks for: its bearer token, resolved to a principal, and the cases the
principal may see (a branch token: its branch's only; others are "not found")."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from workflow.access.tokens import Principal, authenticate
from workflow.engine import Engine
from workflow.errors import CaseNotFound, NotPermitted
from workflow.results import Case

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="token",
    description="A token from `casework tokens create`: `Authorization: Bearer cw_...`.",
)


def engine_of(request: Request) -> Engine:
    """The engine the application serves."""
    engine: Engine = request.app.state.engine
    return engine


def principal_of(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The principal of the request's bearer token (401 without a valid one)."""
    token = None if credentials is None else credentials.credentials
    principal = authenticate(engine_of(request).store, token)
    request.state.actor = principal.actor
    return principal


Auth = Annotated[Principal, Depends(principal_of)]
Served = Annotated[Engine, Depends(engine_of)]


def allowed(principal: Principal, action: str) -> Principal:
    """``principal`` if its role may do ``action``, else :class:`NotPermitted` (403)."""
    principal.require(action)
    return principal


def visible_case(engine: Engine, principal: Principal, case_id: str) -> Case:
    """The case, if the principal may see it; :class:`CaseNotFound` otherwise, so that a
    branch token learns nothing of other branches' cases."""
    case = engine.get(case_id)
    if not principal.sees(case):
        raise CaseNotFound(case_id)
    return case


def whole_database(principal: Principal, what: str) -> None:
    """Refuse a branch token what spans every branch."""
    if principal.branch is not None:
        raise NotPermitted(f"a token of branch {principal.branch} may not {what} every branch")
