"""Two ``casework serve`` processes and a worker on one PostgreSQL database under
concurrent clients: no update is lost, and every stale ``If-Match`` is a 412."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from casework.workflow.access.tokens import issue
from casework.workflow.engine import Engine
from tests.support import wait_until
from tests.support.api_server import free_port

CLIENTS = 8
ROUNDS = 25


@contextmanager
def _process(args: list[str], url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    with log.open("wb") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "casework.workflow.cli", *args], env=env, stdout=out, stderr=out
        )
        try:
            yield child
        finally:
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(20)
            except subprocess.TimeoutExpired:
                child.kill()


def _ready(base: str, child: subprocess.Popen[bytes], log: Path) -> None:
    def up() -> bool:
        if child.poll() is not None:
            raise AssertionError(f"serve exited: {log.read_text()}")
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200

    wait_until(up, tolerate=(httpx.TransportError,), what=f"serve to start ({log})")


@pytest.mark.slow
def test_two_servers_and_a_worker_lose_no_update(pg_url: str, tmp_path: Path) -> None:
    with Engine.open(pg_url) as engine:
        token = issue(engine.context.store, "li.na", "agent", None, engine.clock.now()).token
    ports = [free_port(), free_port()]
    two = ["serve", "--port", str(ports[0]), "--workers", "2"]
    with (
        _process(two, pg_url, tmp_path / "a.log") as a,
        _process(["serve", "--port", str(ports[1])], pg_url, tmp_path / "b.log") as b,
        _process(["worker", "--no-mail", "--poll", "0.2"], pg_url, tmp_path / "w.log"),
    ):
        bases = [f"http://127.0.0.1:{p}" for p in ports]
        _ready(bases[0], a, tmp_path / "a.log")
        _ready(bases[1], b, tmp_path / "b.log")
        headers = {"Authorization": f"Bearer {token}"}
        opened = httpx.post(
            f"{bases[0]}/v1/cases",
            headers=headers,
            json={"customer": "C-1", "channel": "phone", "category": "other", "summary": "x"},
        )
        case_id = opened.json()["id"]
        written: list[int] = []
        refused: list[int] = []
        lock = threading.Lock()

        def client(n: int) -> None:
            with httpx.Client(base_url=bases[n % 2], headers=headers, timeout=30) as http:
                for i in range(ROUNDS):
                    etag = http.get(f"/v1/cases/{case_id}").headers["etag"]
                    answer = http.post(
                        f"/v1/cases/{case_id}/events",
                        json={"event": "note", "note": f"client {n} round {i}"},
                        headers={"If-Match": etag},
                    )
                    with lock:
                        if answer.status_code == 200:
                            written.append(int(etag.strip('"')))
                        else:
                            refused.append(answer.status_code)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert set(refused) <= {412}
        assert len(written) == len(set(written))  # no two writes from the same version
        final = httpx.get(f"{bases[1]}/v1/cases/{case_id}", headers=headers).json()
        history = httpx.get(f"{bases[0]}/v1/cases/{case_id}/history", headers=headers).json()
        notes = [e for e in history if e["event"] == "note"]
        assert len(notes) == len(written)  # every acknowledged write is there, no other
        assert final["version"] == 1 + len(written)
        assert len(written) + len(refused) == CLIENTS * ROUNDS
        metrics = httpx.get(f"{bases[0]}/metrics").text
        assert "casework_http_requests_total" in metrics
    with Engine.open(pg_url) as engine:
        assert engine.verify().ok
