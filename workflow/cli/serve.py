"""``casework serve``: the HTTP API on uvicorn."""

from __future__ import annotations

import os
import tempfile

import click

from casework.workflow.bootstrap import environment, startup
from casework.workflow.cli.support import (
    WHOLE,
    CaseworkCommand,
    arguments,
    database_options,
    engine_for,
    handle_errors,
)


@click.command("serve", cls=CaseworkCommand)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--workers", type=WHOLE, default=1, show_default=True, help="Processes serving requests."
)
@click.option(
    "--heartbeat-s",
    type=click.FloatRange(min=1),
    default=60.0,
    show_default=True,
    help="/readyz fails when no worker woke within this many seconds.",
)
@click.option("--access-log/--no-access-log", default=False, show_default=True)
@click.option(
    "--http",
    "parser",
    type=click.Choice(["h11", "httptools"]),
    default="httptools",
    show_default=True,
    help="HTTP/1.1 parser: httptools is faster; both close a connection that takes over "
    "30 s to send a request head or 120 s to send its body, and serve a request asking "
    "Upgrade: h2c (the JDK's HttpClient, curl --http2) over HTTP/1.1, body and all.",
)
@database_options
@handle_errors
def serve_command(
    host: str,
    port: int,
    workers: int,
    heartbeat_s: float,
    access_log: bool,
    parser: str,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Serve the HTTP API (OpenAPI 3.1 at /openapi.json) and the web console (at /)
    until SIGTERM or SIGINT.

    Every /v1 request needs a token from `casework tokens create`; people sign in to
    the console with one. /healthz, /readyz
    and /metrics need none: expose /metrics on a private network only. Run `casework
    worker` beside it: deadlines fire and mails and webhooks go out from there.
    """
    import uvicorn

    import casework.workflow.api.app  # noqa: F401 - the server extra is there, or one line says so
    from casework.workflow.api.slow_clients import TimelyH11Protocol, TimelyHttpToolsProtocol

    start = startup(arguments(db_url, config_path), os.environ)
    with engine_for(db_url, config_path):  # migrates once, checks the settings, then closes
        pass
    os.environ.update(environment(start))  # each worker opens its engine from it
    os.environ["CASEWORK_HEARTBEAT_S"] = str(heartbeat_s)
    if workers > 1 and not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="casework-metrics-")
    click.echo(f"casework serving on http://{host}:{port} (OpenAPI: /openapi.json)", err=True)
    uvicorn.run(
        "casework.workflow.api.server:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        access_log=access_log,
        log_level="warning",
        timeout_graceful_shutdown=10,
        server_header=False,
        proxy_headers=False,  # nothing here reads the client's address
        http=TimelyH11Protocol if parser == "h11" else TimelyHttpToolsProtocol,
    )
