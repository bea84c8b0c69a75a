"""The short way for the request a back office sends most, ``POST
/v1/cases/{id}/events``: parsed and checked by the route's own model, authenticated by
the token cache and answered by the route's own function, without FastAPI's routing
and dependency solving (which cost more than the event itself).

Only a request it can take whole goes this way: a JSON body within the size limit
(a chunked one already counted, and given its length, by :mod:`.limits`) that the
model accepts. Anything else (another media type, a body the model refuses) goes on
to FastAPI with its body, so every error is answered by one code path. OpenAPI
documents the route as FastAPI declares it.
"""

from __future__ import annotations

import re
from typing import Any

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from casework.workflow.api import cases, models
from casework.workflow.api.limits import ClientGone, read_within, replay, too_large
from casework.workflow.api.offload import offload_for
from casework.workflow.api.problems import failed, from_error
from casework.workflow.api.security import principal_for
from casework.workflow.engine import Engine
from casework.workflow.errors import CaseworkError
from casework.workflow.storage_boundary import storage_error_types, translated

EVENTS = re.compile(r"/v1/cases/([^/]+)/events")
ROUTE_PATH = "/v1/cases/{case_id}/events"


class HotPath:
    """ASGI middleware in front of the FastAPI application ``app``."""

    def __init__(self, app: Any, max_body: int) -> None:
        self.app = app
        self.max_body = max_body
        self.route = next(r for r in cases.router.routes if getattr(r, "path", "") == ROUTE_PATH)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        found = (
            EVENTS.fullmatch(scope["path"])
            if scope["type"] == "http" and scope["method"] == "POST"
            else None
        )
        if found is None or not self._json_within_limit(scope["headers"]):
            await self.app(scope, receive, send)
            return
        try:
            body = await read_within(receive, self.max_body)
        except ClientGone:
            return
        if body is None:  # more than it declared: the server would not let it through
            await too_large(self.max_body, "", scope, receive, send)
            return
        try:
            event = models.FireEvent.model_validate_json(body)
        except ValidationError:  # FastAPI answers it, with its usual problem
            await self.app(scope, replay(body, receive), send)
            return
        scope["app"] = self.app
        scope["route"] = self.route
        scope["path_params"] = {"case_id": found.group(1)}
        request = Request(scope, receive)
        engine: Engine = self.app.state.engine
        answer: Response
        try:
            principal = await principal_for(request)
            answer = await offload_for(engine).run(
                "short", cases.apply_event, found.group(1), event, request, principal, engine
            )
        except CaseworkError as err:
            answer = from_error(err, scope["path"])
        except storage_error_types() as err:  # the token's look-up: as the engine's own
            answer = from_error(translated(err), scope["path"])
        except Exception as err:  # answered as FastAPI would: a bare 500, logged
            answer = failed(scope["path"], err)
        await answer(scope, receive, send)

    def _json_within_limit(self, headers: list[tuple[bytes, bytes]]) -> bool:
        length = kind = b""
        for name, value in headers:
            if name == b"content-length":
                length = value
            elif name == b"content-type":
                kind = value
        return (
            kind.split(b";")[0].strip().lower() == b"application/json"
            and length.isdigit()
            and int(length) <= self.max_body
        )
