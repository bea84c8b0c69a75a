"""Request bodies limited while they are read, before anything parses them or looks at
the token.

A body that declares its length (``Content-Length``) beyond the route's limit is
refused at once, unread; the server reads no more of it than it declared. A chunked
body declares nothing: its chunks are counted as they arrive and the request is
refused (413) as soon as the count passes the limit, so a 300 MB chunked upload costs
one chunk of memory, token or none. One within the limit goes on with its length
declared, read once, as if the client had said it. The limit is 1 MiB, or the
attachment limit (``limits.max_attachment_bytes``) on the attachment upload route.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from casework.workflow.api.problems import problem

MAX_BODY = 1 << 20
"""The largest request body taken on any route without a limit of its own (1 MiB)."""
ATTACHMENTS = re.compile(r"/v1/cases/[^/]+/attachments")
"""The attachment upload route (``POST``), whose limit is the attachment limit."""


class BodyLimit:
    """ASGI middleware refusing (413) a request body larger than its route's limit,
    chunked or not, before the application sees the request."""

    def __init__(
        self,
        app: Any,
        limit: int = MAX_BODY,
        routes: Sequence[tuple[str, re.Pattern[str], int, str]] = (),
    ) -> None:
        self.app = app
        self.limit = limit
        self.by_route = tuple(routes)

    def limit_for(self, method: str, path: str) -> tuple[int, str]:
        """The most bytes a body of ``method`` on ``path`` may have, and the setting
        that says so (empty: the general limit)."""
        for route_method, pattern, limit, setting in self.by_route:
            if method == route_method and pattern.fullmatch(path):
                return limit, setting
        return self.limit, ""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = chunked = None
        for name, value in scope["headers"]:
            if name == b"content-length":
                length = value
            elif name == b"transfer-encoding":
                chunked = value
        if length is None and chunked is None:  # no body (GET and the like)
            await self.app(scope, receive, send)
            return
        limit, setting = self.limit_for(scope["method"], scope["path"])
        # A chunked body is framed by its chunks, whatever length it also declares
        # (RFC 9112 6.3): only a body without Transfer-Encoding is held to its length.
        if chunked is None and length is not None and length.isdigit():
            if int(length) > limit:
                await too_large(limit, setting, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        try:
            body = await read_within(receive, limit)
        except ClientGone:  # nobody to answer
            return
        if body is None:
            await too_large(limit, setting, scope, receive, send)
            return
        headers = [(n, v) for n, v in scope["headers"] if n != b"transfer-encoding"]
        headers.append((b"content-length", str(len(body)).encode()))
        scope["headers"] = headers  # in place: the route the app finds is the metrics' label
        await self.app(scope, replay(body, receive), send)


class ClientGone(Exception):
    """The client disconnected before its body ended."""


async def read_within(receive: Any, limit: int) -> bytes | None:
    """The whole body, counted chunk by chunk as it arrives; ``None`` as soon as it
    passes ``limit`` bytes (the rest is never read); :class:`ClientGone` if the client
    left before it ended."""
    chunks: list[bytes] = []
    count = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientGone
        chunk = message.get("body", b"")
        count += len(chunk)
        if count > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    return b"".join(chunks)


def replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands over ``body`` once, then listens on (for a disconnect)."""
    sent = False

    async def again() -> Any:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return again


async def too_large(limit: int, setting: str, scope: Any, receive: Any, send: Any) -> None:
    """Answer 413 problem+json and close the connection (the rest of the body unread)."""
    if setting:
        detail = f"the body is larger than {limit:,} bytes ({setting})"
    else:
        detail = "the body is larger than 1 MiB"
    answer = problem(413, "request-too-large", detail, scope["path"])
    answer.headers["connection"] = "close"
    await answer(scope, receive, send)
