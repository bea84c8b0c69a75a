"""Request bodies are limited while they are read, chunked or not, before the token is
looked at: a 300 MB chunked body is refused (413) after about its limit, with a token
or none, on the general routes, the hot path of events and the attachment upload; the
server's memory stays flat; bodies within the limit are served, chunked or not."""

from __future__ import annotations

import os
import select
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from casework.workflow.access.tokens import issue
from casework.workflow.engine import Engine
from tests.support.api_server import Served, free_port, serving

HUGE = 300 << 20
"""What an attacker sends: 300 MB."""
CHUNK = 64 << 10
SLACK = 64 << 20
"""Most a refused body may cost: the limit plus what sockets and the server buffer,
far below what it sends."""
OPEN = {"customer": "CUST-1", "channel": "phone", "category": "other", "summary": "s"}


def _kib(field: str, pid: int | str = "self") -> int:
    """A memory figure of a process, in KiB, from ``/proc`` (VmRSS now, VmHWM the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def chunked_post(
    base: str,
    path: str,
    *,
    token: str | None,
    total: int = HUGE,
    kind: str = "application/json",
    watch: list[int] | None = None,
    headers: tuple[str, ...] = (),
) -> tuple[int, bytes, int]:
    """POST up to ``total`` bytes chunked on a raw socket, stopping as soon as the server
    answers or closes: its status, its body and how many bytes were sent. ``watch``
    collects this process's RSS (KiB) as the body goes (a server in this process);
    ``headers`` are sent besides."""
    address = urlsplit(base)
    assert address.hostname is not None
    assert address.port is not None
    lines = [
        f"POST {path} HTTP/1.1",
        f"Host: {address.hostname}:{address.port}",
        "Transfer-Encoding: chunked",
        f"Content-Type: {kind}",
        *([f"Authorization: Bearer {token}"] if token else []),
        *headers,
    ]
    frame = b"%x\r\n" % CHUNK + b"x" * CHUNK + b"\r\n"
    sent = 0
    answer = b""
    with socket.create_connection((address.hostname, address.port), timeout=60) as sock:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        pending = memoryview(frame)
        try:
            while sent < total:
                readable, writable, _ = select.select([sock], [sock], [], 60)
                if readable:  # an answer (or the close) before the body ended
                    break
                assert writable, "the server neither reads nor answers"
                done = sock.send(pending)
                pending = pending[done:]
                if not pending:
                    sent += CHUNK
                    pending = memoryview(frame)
                    if watch is not None and sent % (4 << 20) == 0:
                        watch.append(_kib("VmRSS"))
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            while part := sock.recv(1 << 16):
                answer += part
                if b"\r\n\r\n" in answer and _complete(answer):
                    break
        except ConnectionResetError:
            pass
    assert answer, f"no answer after {sent:,} bytes"
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body, sent


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


@pytest.fixture
def api(engine: Engine) -> Iterator[Served]:
    """The API of ``engine`` on loopback."""
    with serving(engine) as served:
        yield served


def _refused(status: int, body: bytes, sent: int) -> None:
    assert status == 413, body
    assert b'"status":413' in body
    assert b"request-too-large" in body
    assert sent < SLACK, f"{sent:,} bytes taken before the answer"


def test_a_huge_chunked_body_is_refused_before_the_token(api: Served) -> None:
    case_id = api.engine.open_case(customer="C", channel="phone", category="other", summary="s").id
    token = api.token()
    before = _kib("VmRSS")
    watch: list[int] = []
    for path in ("/v1/cases", f"/v1/cases/{case_id}/events", "/v1/tokens"):
        for given in (None, token):
            _refused(*chunked_post(api.url, path, token=given, watch=watch))
    for given in (None, token):  # the attachment limit (10 MiB) holds chunked uploads too
        status, body, sent = chunked_post(
            api.url,
            f"/v1/cases/{case_id}/attachments?kind=photo&name=a.jpg",
            token=given,
            kind="application/octet-stream",
            watch=watch,
        )
        _refused(status, body, sent)
        assert b"limits.max_attachment_bytes" in body
    assert max(watch, default=before) - before < SLACK // 1024
    assert api.engine.get(case_id).version == 1  # nothing was recorded


def test_bodies_within_the_limit_are_served_chunked_or_not(api: Served) -> None:
    token = api.token()

    def chunked(data: bytes) -> Iterator[bytes]:  # httpx sends an iterator chunked
        for start in range(0, len(data), 1000):
            yield data[start : start + 1000]

    with api.client(token) as http:
        json_type = {"content-type": "application/json"}
        opened = http.post("/v1/cases", content=chunked(httpx.Request(
            "POST", "/", json=OPEN).content), headers=json_type)  # fmt: skip
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["id"]
        event = b'{"event": "contact", "data": {"kind": "call"}}'
        fired = http.post(f"/v1/cases/{case_id}/events", content=chunked(event), headers=json_type)
        assert fired.status_code == 200, fired.text
        assert fired.json()["version"] == 2
        photo = os.urandom(3 << 20)  # above 1 MiB, within the attachment limit
        path = f"/v1/cases/{case_id}/attachments"
        params = {"kind": "photo", "name": "a.jpg"}
        binary = {"content-type": "application/octet-stream"}
        for content in (photo, chunked(photo)):
            attached = http.post(path, params=params, content=content, headers=binary)
            assert attached.status_code == 201, attached.text
        declared = http.post(path, params=params, content=b"x" * (11 << 20), headers=binary)
        assert declared.status_code == 413
        assert declared.headers["content-type"] == "application/problem+json"
        assert http.get(f"/v1/cases/{case_id}").json()["version"] == 4  # on a new connection


@pytest.mark.slow  # 300 MB sent: the full suite runs it, not the fast lane
def test_serve_keeps_its_memory_under_a_300_mb_chunked_body(tmp_path: Path) -> None:
    """``casework serve`` in its own process: its peak memory (VmHWM) hardly moves."""
    url = f"sqlite:///{tmp_path / 'casework.db'}"
    with Engine.open(url) as engine:
        token = issue(engine.context.store, "li.na", "agent", None, engine.clock.now()).token
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "casework.workflow.cli", "serve", "--port", str(port)],
            env=env, stdout=out, stderr=out,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 60
            while True:
                assert child.poll() is None, log.read_text()
                assert time.monotonic() < deadline, f"serve did not start: {log.read_text()}"
                try:
                    if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {token}"}) as http:
                assert http.post("/v1/cases", json=OPEN).status_code == 201  # warmed up
            peak = _kib("VmHWM", child.pid)
            for given in (None, token):
                _refused(*chunked_post(base, "/v1/cases", token=given))
            assert _kib("VmHWM", child.pid) - peak < SLACK // 1024
        finally:
            child.terminate()
            child.wait(20)


def test_a_client_leaving_mid_body_records_nothing(api: Served) -> None:
    """A chunked body cut off by the client is never taken as a whole body."""
    token = api.token()
    address = urlsplit(api.url)
    assert address.hostname is not None
    assert address.port is not None
    body = b'{"customer": "CUST-9", "channel": "phone", "category": "other", "summary": "s"}'
    for path in ("/v1/cases", "/v1/cases/nope/events"):
        with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
            sock.sendall(
                f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                f"Content-Type: application/json\r\nAuthorization: Bearer {token}\r\n\r\n".encode()
                + b"%x\r\n" % len(body)
                + body
                + b"\r\n"
            )
    with api.client(token) as http:
        assert http.get("/v1/cases").json()["items"] == []
        assert http.post("/v1/cases", json=OPEN).status_code == 201
