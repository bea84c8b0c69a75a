"""A real HTTP receiver on loopback: records every request, answers from a script."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as it arrived."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """What the server got, and the statuses it answers with (then 204 for ever).

    ``dripping`` is set once a dripping receiver has begun its answer; ``dripped`` once
    it has ended one (its ``drip`` event was set, or the sender went away)."""

    url: str
    requests: list[Received] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    dripping: threading.Event = field(default_factory=threading.Event)
    dripped: threading.Event = field(default_factory=threading.Event)


@contextmanager
def receiver(
    answers: list[int] | None = None,
    *,
    body: bytes = b"",
    drip: threading.Event | None = None,
    port: int = 0,
) -> Iterator[Receiver]:
    """A receiver on 127.0.0.1 at ``port`` (default: a free one), stopped when the block
    ends.

    ``body`` is sent with every answer. With ``drip``, each answer (a 200) comes a
    byte at a time, one every 20 ms, until the test sets ``drip``: a receiver as slow as
    the test wants, which never lets a per-read timeout run out."""
    state = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            got = self.rfile.read(length)
            if len(got) < length:  # the sender died mid-request: nothing was delivered
                self.close_connection = True
                return
            with lock:
                state.requests.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, got)
                )
                status = state.answers.pop(0) if state.answers else 204
            if drip is not None:
                self._drip(drip)
                return
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _drip(self, until: threading.Event) -> None:
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self.wfile.flush()
                state.dripping.set()
                while not until.wait(0.02):
                    self.wfile.write(b"z")
                    self.wfile.flush()
                self.wfile.write(b"\r\nContent-Length: 0\r\n\r\n")
            except OSError:  # the sender gave up
                self.close_connection = True
            finally:
                state.dripped.set()

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    state.answers = list(answers or [])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
