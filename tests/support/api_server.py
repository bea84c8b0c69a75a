"""The HTTP API on a real uvicorn server on loopback, in a thread of the test process."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from casework.workflow.access.tokens import issue
from casework.workflow.api.app import create_app
from casework.workflow.api.slow_clients import TimelyHttpToolsProtocol
from casework.workflow.engine import Engine
from tests.support import wait_until


def free_port() -> int:
    """A TCP port on loopback that nothing listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass
class Served:
    """A running server: its base URL and a way to make tokens."""

    url: str
    engine: Engine
    app: Any = None
    """The ASGI application served."""

    def token(self, role: str = "agent", actor: str = "li.na", branch: str | None = None) -> str:
        """A new token's secret."""
        return issue(self.engine.context.store, actor, role, branch, self.engine.clock.now()).token

    def client(self, token: str | None = None) -> httpx.Client:
        """A keep-alive client, authenticated with ``token`` if given."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


@contextmanager
def serving(
    engine: Engine,
    *,
    heartbeat_s: float = 60.0,
    read_engine: Engine | None = None,
    http: Any = TimelyHttpToolsProtocol,
) -> Iterator[Served]:
    """Serve ``engine`` on 127.0.0.1 at a free port until the block ends, reading HTTP
    with ``http`` (a protocol class, or uvicorn's ``h11`` or ``httptools``); by
    default as ``casework serve`` does."""
    app = create_app(engine, heartbeat_s=heartbeat_s, read_engine=read_engine)
    with serving_app(app, http=http) as url:
        yield Served(url, engine, app)


@contextmanager
def serving_app(app: Callable[..., Any], *, http: Any = TimelyHttpToolsProtocol) -> Iterator[str]:
    """Serve any ASGI ``app`` (a host application's, say) on 127.0.0.1 at a free port
    until the block ends; the block gets its base URL."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", http=http
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_until(lambda: server.started or not thread.is_alive(), what="the API server to start")
    if not server.started:
        raise RuntimeError("the API server did not start")
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
