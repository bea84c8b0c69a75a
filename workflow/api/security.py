"""Who a request speaks for: its bearer token, resolved to a principal (what the
principal may see and do is :mod:`casework.workflow.access.scope`'s).

A resolved token is remembered for :data:`REMEMBER_S` seconds, so a client's requests
cost no lookup each (nor a hop to a worker thread); revoking through this process's
API forgets it at once, revoking elsewhere (``casework tokens revoke``, another
process) takes effect within that time.
"""

from __future__ import annotations

import time

from fastapi import Request

from casework.workflow.access.tokens import Principal, authenticate, secret_hash
from casework.workflow.api.offload import offload_for
from casework.workflow.engine import Engine

REMEMBER_S = 2.0
"""How long a resolved token is taken on trust before it is looked up again."""


class Principals:
    """Tokens resolved lately, by the hash of their secret."""

    def __init__(self, remember_s: float = REMEMBER_S) -> None:
        self.remember_s = remember_s
        self._known: dict[str, tuple[float, Principal]] = {}

    def get(self, token: str) -> Principal | None:
        """The principal of ``token`` if resolved within the last few seconds."""
        found = self._known.get(secret_hash(token))
        if found is None or time.monotonic() - found[0] > self.remember_s:
            return None
        return found[1]

    def put(self, token: str, principal: Principal) -> None:
        """Remember a resolved token."""
        if len(self._known) > 10_000:
            self._known.clear()
        self._known[secret_hash(token)] = (time.monotonic(), principal)

    def forget(self, token_id: str) -> None:
        """Forget a token (revoked)."""
        self._known = {k: v for k, v in self._known.items() if v[1].token_id != token_id}


SCHEME = {
    "type": "http",
    "scheme": "bearer",
    "description": "A token from `casework tokens create`: `Authorization: Bearer cw_...`.",
}
"""The security scheme ``token`` of the OpenAPI document."""


async def principal_for(request: Request) -> Principal:
    """The principal of the request's bearer token (401 without a valid one)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    given = token.strip() if scheme.lower() == "bearer" and token.strip() else None
    known: Principals = request.app.state.principals
    principal = None if given is None else known.get(given)
    if principal is None:
        engine: Engine = request.app.state.engine
        principal = await offload_for(engine).run(
            "short", authenticate, engine.context.store, given, engine.settings.organisation
        )
        known.put(given or "", principal)
    return principal


Auth = Principal
"""An endpoint's principal: resolved from its token by
:func:`casework.workflow.api.endpoints.endpoint`, not by FastAPI."""
Served = Engine
"""An endpoint's engine: filled in by :func:`casework.workflow.api.endpoints.endpoint`."""


def allowed(principal: Principal, action: str) -> Principal:
    """``principal`` if its role may do ``action``, else :class:`NotPermitted` (403)."""
    principal.require(action)
    return principal
