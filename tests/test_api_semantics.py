"""HTTP as the RFCs say, against real servers: 412 for a stale ``If-Match``, 405 with
``Allow``, 400 for malformed JSON, 415 for another media type, 422 for instants that
are numbers, a token that may not revoke itself, ``Idempotency-Key`` on every POST,
and a request asking ``Upgrade: h2c`` (JDK and curl clients) served as HTTP/1.1 with
its body by ``casework serve``."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from casework.workflow.access.tokens import issue
from casework.workflow.api.slow_clients import TimelyH11Protocol, TimelyHttpToolsProtocol
from casework.workflow.engine import Engine
from tests.support.api_server import Served, free_port, serving
from tests.test_api_processes import _process, _ready

OPEN = {"customer": "CUST-1", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门", "branch": "东莞长安店"}  # fmt: skip


@pytest.fixture
def api(db_url: str) -> Iterator[Served]:
    with Engine.open(db_url) as engine, serving(engine) as served:
        yield served


def test_a_stale_if_match_is_412_and_a_race_without_one_409(api: Served) -> None:
    with api.client(api.token()) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        path = f"/v1/cases/{case['id']}/events"
        assert http.post(path, json={"event": "apologise"}, headers={"If-Match": '"1"'}).is_success
        stale = http.post(path, json={"event": "note", "note": "x"}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412, stale.text
        assert stale.json()["type"] == "urn:casework:problem:precondition-failed"
        assert (stale.json()["expected_version"], stale.json()["actual_version"]) == (1, 2)
        assert http.post(path, json={"event": "note", "note": "y"}).status_code == 200


def test_methods_media_types_and_instants(api: Served) -> None:
    with api.client(api.token("admin")) as http:
        put = http.put("/v1/cases")
        assert put.status_code == 405
        assert put.headers["allow"] == "GET, POST"  # every route of the path, not one
        assert http.delete("/v1/cases/abc/history").headers["allow"] == "GET"
        for status, answer in [
            (400, http.post("/v1/cases", content=b"{not json", headers=JSON)),
            (400, http.post("/v1/cases/abc/events", content=b'{"event":', headers=JSON)),
            (415, http.post("/v1/cases", content=json.dumps(OPEN), headers=TEXT)),
            (415, http.post("/v1/cases/abc/events", content=b'{"event": "x"}', headers=TEXT)),
            (422, http.get("/v1/export", params={"until": "0.5"})),
            (422, http.get("/v1/export", params={"since": "1700000000"})),
            (422, http.get("/v1/cases/abc/replay", params={"at": "12"})),
            (422, http.post("/v1/cases", json={**OPEN, "received_at": 0})),
            (422, http.get("/v1/outbox", params={"limit": 2**70})),
            (422, http.post("/v1/outbox/99999999999999999999999/retry")),
        ]:
            assert answer.status_code == status, answer.text
            assert answer.headers["content-type"] == "application/problem+json"
        assert http.get("/v1/export", params={"until": "2030-01-01T00:00:00+08:00"}).is_success


def test_a_token_may_not_revoke_itself(api_sqlite: Served) -> None:
    api = api_sqlite
    admin = api.token("admin", actor="root")
    with api.client(admin) as http:
        mine = next(t for t in http.get("/v1/tokens").json() if t["actor"] == "root")
        refused = http.delete(f"/v1/tokens/{mine['id']}")
        assert refused.status_code == 409
        assert "another administrator's token" in refused.json()["detail"]
        assert http.get("/v1/tokens").status_code == 200  # still in use
        other = http.post("/v1/tokens", json={"actor": "li.na", "role": "agent"}).json()
        assert http.delete(f"/v1/tokens/{other['id']}").json()["revoked_at"]


def test_every_post_honours_its_idempotency_key(api_sqlite: Served) -> None:
    api = api_sqlite
    with api.client(api.token("admin")) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        posts = [
            (f"/v1/cases/{case['id']}/replan", {}),
            ("/v1/partners", {"json": {"id": "p1", "name": "P", "kind": "installer"}}),
            ("/v1/jobs", {"json": {"kind": "repair", "branch": "b",
                                   "done_at": "2026-11-20T10:00:00+08:00"}}),
            ("/v1/erasures", {"json": {"customer": "CUST-9", "reason": "asked", "dry_run": True}}),
            (f"/v1/cases/{case['id']}/attachments?kind=photo&name=a.jpg",
             {"content": b"\xff\xd8 photo", "headers": OCTETS}),
        ]  # fmt: skip
        for n, (path, send) in enumerate(posts):
            key = {"Idempotency-Key": f"k-{n}"}
            extra = dict(send)
            headers = {**extra.pop("headers", {}), **key}
            first = http.post(path, headers=headers, **extra)
            again = http.post(path, headers=headers, **extra)
            if first.status_code >= 400:  # replan without a newer policy refuses: not kept
                assert again.status_code == first.status_code
                continue
            assert again.headers.get("idempotent-replayed") == "true", path
            assert again.json() == first.json()
        versions = [e["seq"] for e in http.get(f"/v1/cases/{case['id']}/history").json()]
        assert [e["event"] for e in http.get(f"/v1/cases/{case['id']}/history").json()].count(
            "attach"
        ) == 1, versions


@pytest.fixture
def api_sqlite(tmp_path: Path) -> Iterator[Served]:
    with Engine.open(f"sqlite:///{tmp_path / 'c.db'}") as engine, serving(engine) as served:
        yield served


JSON = {"content-type": "application/json"}
TEXT = {"content-type": "text/plain"}
OCTETS = {"content-type": "application/octet-stream"}


@pytest.fixture
def served_process(tmp_path: Path) -> Iterator[tuple[str, str]]:
    url = f"sqlite:///{tmp_path / 'serve.db'}"
    with Engine.open(url) as engine:
        token = issue(engine.context.store, "li.na", "agent", None, engine.clock.now()).token
    port = free_port()
    log = tmp_path / "serve.log"
    with _process(["serve", "--port", str(port)], url, log) as child:
        base = f"http://127.0.0.1:{port}"
        _ready(base, child, log)
        yield base, token


def _raw_h2c_post(port: int, path: str, token: str, body: bytes) -> tuple[int, bytes]:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
        "HTTP2-Settings: AAEAAEAAAAIAAAABAAMAAABkAAQBAAAAAAUAAEAA\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + body)
        return _answers(sock, 1)[0]


def _answers(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """The next ``count`` answers on ``sock`` (each framed by its ``Content-Length``)."""
    received, answers = b"", []
    while len(answers) < count:
        while b"\r\n\r\n" not in received:
            received += sock.recv(65536)
        header, _, received = received.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in header.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(received) < length:
            received += sock.recv(65536)
        answers.append((int(header.split(b" ", 2)[1]), received[:length]))
        received = received[length:]
    return answers


UPGRADE = "Connection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\nHTTP2-Settings: AAEAAEAA\r\n"


def _head(method: str, path: str, token: str, framing: str, asks: bool = True) -> bytes:
    return (f"{method} {path} HTTP/1.1\r\nHost: x\r\n{UPGRADE if asks else ''}"
            f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
            f"{framing}\r\n").encode()  # fmt: skip


@pytest.mark.parametrize("parser", [TimelyHttpToolsProtocol, TimelyH11Protocol])
def test_requests_asking_to_upgrade_are_served_as_http_1_1_with_their_bodies(
    tmp_path: Path, parser: type
) -> None:
    # The JDK's HttpClient and curl --http2 ask Upgrade: h2c on http://; httptools
    # stops at such a request's head and uvicorn served it without its body.
    with (
        Engine.open(f"sqlite:///{tmp_path / 'c.db'}") as engine,
        serving(engine, http=parser) as api,
        socket.create_connection(("127.0.0.1", int(api.url.rsplit(":", 1)[1])), 30) as sock,
    ):
        token, opening = api.token(), json.dumps(OPEN).encode()
        sock.sendall(_head("POST", "/v1/cases", token, f"Content-Length: {len(opening)}\r\n"))
        sock.sendall(opening)  # the body after the head, as a client may send it
        status, body = _answers(sock, 1)[0]
        assert status == 201, body
        events = f"/v1/cases/{json.loads(body)['id']}/events"
        apologise, note = b'{"event": "apologise"}', '{"event": "note", "note": "催"}'.encode()
        sock.sendall(  # pipelined: chunked, then one not asking, then one without a body
            _head("POST", events, token, "Transfer-Encoding: chunked\r\n")
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(apologise), apologise)
            + _head("POST", events, token, f"Content-Length: {len(note)}\r\n", asks=False)
            + note
            + _head("GET", events.removesuffix("/events"), token, "")
        )
        answers = _answers(sock, 3)
    assert [s for s, _ in answers] == [200, 200, 200], answers
    assert [json.loads(b)["version"] for _, b in answers] == [2, 3, 3]
    assert json.loads(answers[0][1])["state"] == "apologised"


@pytest.mark.slow  # a casework serve process
def test_an_h2c_upgrade_request_keeps_its_body(served_process: tuple[str, str]) -> None:
    base, token = served_process
    port = int(base.rsplit(":", 1)[1])
    status, body = _raw_h2c_post(port, "/v1/cases", token, json.dumps(OPEN).encode())
    assert status == 201, body
    case = json.loads(body)
    status, body = _raw_h2c_post(
        port, f"/v1/cases/{case['id']}/events", token, b'{"event": "apologise"}'
    )
    assert (status, json.loads(body)["state"]) == (200, "apologised")


JAVA = """
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;

public class OpenCase {
    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newHttpClient();  // HTTP/2 first: Upgrade: h2c
        HttpRequest request = HttpRequest.newBuilder(URI.create(args[0] + "/v1/cases"))
            .header("Authorization", "Bearer " + args[1])
            .header("Content-Type", "application/json")
            .POST(HttpRequest.BodyPublishers.ofString(args[2]))
            .build();
        HttpResponse<String> answer = client.send(request, HttpResponse.BodyHandlers.ofString());
        System.out.println(answer.statusCode());
        System.out.println(answer.body());
    }
}
"""


@pytest.mark.slow  # compiles and runs a Java program
def test_a_jdk_http_client_opens_a_case(served_process: tuple[str, str], tmp_path: Path) -> None:
    javac, java = shutil.which("javac"), shutil.which("java")
    if javac is None or java is None:
        ci = Path(__file__).parents[1] / ".ci" / "run"
        if os.environ.get("CI") == "true" and "jdk" in ci.read_text():
            pytest.fail(".ci/run installs a JDK, but javac is not on the PATH")
        pytest.skip("no JDK here (javac): the raw h2c request above covers the server side")
    base, token = served_process
    (tmp_path / "OpenCase.java").write_text(JAVA)
    subprocess.run([javac, "OpenCase.java"], cwd=tmp_path, check=True, timeout=300)
    done = subprocess.run(
        [java, "-cp", str(tmp_path), "OpenCase", base, token, json.dumps(OPEN)],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    status, body = done.stdout.split("\n", 1)
    assert status == "201", done.stdout
    assert json.loads(body)["customer"] == "CUST-1"
