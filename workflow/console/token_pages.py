"""Administrators make and revoke the tokens people sign in with."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import Request
from fastapi.responses import Response

from casework.workflow.console.frame import (
    engine_of,
    lang_of,
    render,
    router,
    signed_in,
)
from casework.workflow.console.sessions import (
    Session,
)
from casework.workflow.errors import (
    CaseworkError,
    NotPermitted,
)
from casework.workflow.labels import refusal


@router.get("/tokens")
@signed_in("admin")
def tokens(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Administrators make and revoke the tokens people sign in with."""
    return _tokens_page(request, session)


def _tokens_page(request: Request, session: Session, **extra: Any) -> Response:
    from casework.workflow.access.scope import powers, visible_tokens
    from casework.workflow.access.tokens import ROLES

    principal = session.principal
    found = [
        t.to_json()
        for t in visible_tokens(principal, engine_of(request).context.store.access.tokens())
    ]
    roles = [r for r in ROLES if powers(r) <= powers(principal.role)]
    return render(request, "tokens.html", "tokens", session, tokens=found, roles=roles,
                  made=extra.pop("made", None), own_branch=principal.branch, **extra)  # fmt: skip


@router.post("/tokens")
@signed_in("admin")
def make_token(request: Request, session: Session, form: Mapping[str, str]) -> Response:
    """Make a token (shown this once) or revoke one; a branch administrator, of its
    branch only (:mod:`casework.workflow.access.scope`)."""
    from casework.workflow.access.scope import may_mint, may_revoke
    from casework.workflow.access.tokens import issue, revoke

    engine = engine_of(request)
    try:
        if form.get("revoke"):
            may_revoke(session.principal, engine.context.store.access.tokens(), form["revoke"])
            revoke(engine.context.store, form["revoke"], engine.clock.now())
            request.app.state.principals.forget(form["revoke"])
            return _tokens_page(request, session)
        branch = form.get("branch") or None
        may_mint(session.principal, form.get("role", ""), branch)
        made = issue(engine.context.store, form.get("actor", ""), form.get("role", ""), branch,
                     engine.clock.now())  # fmt: skip
    except NotPermitted as err:
        return _tokens_page(request, session, flash=refusal(lang_of(request), err), status=403)
    except CaseworkError as err:
        return _tokens_page(request, session, flash=refusal(lang_of(request), err))
    return _tokens_page(request, session, made=made.token)
