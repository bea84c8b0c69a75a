"""A request sent to an ASGI application itself, without sockets or a server."""

from __future__ import annotations

from typing import Any


async def asgi_post(
    app: Any, path: str, body: bytes, headers: list[tuple[bytes, bytes]]
) -> tuple[int, bytes]:
    """``POST`` ``body`` to ``path`` of ``app`` with ``headers`` (and its length): the
    status and body of the answer."""
    sent = [(b"host", b"test"), (b"content-length", str(len(body)).encode()), *headers]
    scope = {"type": "http", "http_version": "1.1", "method": "POST", "scheme": "http",
             "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
             "headers": sent, "client": ("127.0.0.1", 1)}  # fmt: skip
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    status: list[int] = []
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        return messages.pop() if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            status.append(message["status"])
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))

    await app(scope, receive, send)
    return status[0], b"".join(chunks)
