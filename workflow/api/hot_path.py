"""The short way for the request a back office sends most, ``POST
/v1/cases/{id}/events``, without FastAPI's routing and dependency solving (which cost
more than the event itself).

Nothing of the route is written here: it is declared once
(:func:`casework.workflow.api.endpoints.declare`), and the short way takes FastAPI's own
route for its path, the declared model for its body, the very function FastAPI calls
(token, role, NUL check, offload, the endpoint) and the application's own error
handlers for its answers.

It takes a request whose body is sent as ``application/json`` (any other JSON media
type goes through FastAPI: that is how a client, or a test, asks for the long way) and
that the model accepts; a body the model refuses goes on to FastAPI, which answers it.
Bodies are limited before either way by :class:`casework.workflow.api.limits.BodyLimit`
(a chunked one counted, and given its length). OpenAPI documents the route as FastAPI
declares it.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, cast

from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from casework.workflow.api.endpoints import Declared
from casework.workflow.api.limits import MAX_BODY, ClientGone, read_within, replay, too_large

MEDIA_TYPE = b"application/json"
"""The media type of a body the short way takes."""


class HotPath:
    """ASGI middleware in front of the FastAPI application ``app``, taking the
    ``routes`` declared for it the short way; :attr:`served` counts what it answered."""

    def __init__(self, app: Any, routes: Sequence[Declared]) -> None:
        self.app = app
        self.declared = tuple(routes)
        self.served = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        taken = self._taken(scope) if scope["type"] == "http" else None
        if taken is None:
            await self.app(scope, receive, send)
            return
        declared, found = taken
        try:
            body = await read_within(receive, MAX_BODY)
        except ClientGone:
            return
        if body is None:  # BodyLimit in front lets no such body through
            await too_large(MAX_BODY, "", scope, receive, send)
            return
        try:
            parsed = declared.model.model_validate_json(body)
        except ValidationError:  # FastAPI answers it, with its usual problem
            await self.app(scope, replay(body, receive), send)
            return
        scope.update(found, app=self.app)
        request = Request(scope, replay(body, receive))
        answer: Response
        try:
            answer = await declared.route.endpoint(
                request=request, **scope["path_params"], **{declared.body: parsed}
            )
        except Exception as err:
            answer = await self._answer(request, err)
        self.served += 1
        await answer(scope, receive, send)

    def _taken(self, scope: Any) -> tuple[Declared, Mapping[str, Any]] | None:
        """The declared route and FastAPI's match of a request the short way takes."""
        for declared in self.declared:
            if scope["method"] not in (declared.route.methods or ()):
                continue
            if not _json_with_length(scope["headers"]):
                return None
            match, found = declared.route.matches(scope)
            if match is Match.FULL:
                return declared, found
        return None

    async def _answer(self, request: Request, error: Exception) -> Response:
        """The answer of the application's handler for ``error``, as FastAPI finds it."""
        handlers = self.app.exception_handlers
        for kind in type(error).__mro__:
            handler = handlers.get(kind)
            if handler is not None:
                answer = handler(request, error)
                if inspect.isawaitable(answer):
                    answer = await answer
                return cast(Response, answer)
        raise error


def _json_with_length(headers: list[tuple[bytes, bytes]]) -> bool:
    length = kind = b""
    for name, value in headers:
        if name == b"content-length":
            length = value
        elif name == b"content-type":
            kind = value
    return kind.split(b";")[0].strip().lower() == MEDIA_TYPE and length.isdigit()
