"""The HTTP API against the engine in-process: throughput and latency of firing events.

    python -m bench.http [--backend sqlite|postgres|both] [--seconds 5] [--rounds 5]
                         [--http h11|httptools]

For each backend, in one run:

- the baseline: ``Engine.fire`` of ``note`` events in-process, one thread, on the
  cases the HTTP clients use (while the server idles), and its CPU time per event;
- ``POST /v1/cases/{id}/events`` over HTTP against ``casework serve`` (SQLite: one
  process; PostgreSQL: ``--workers 2``; requests read by ``--http``, serve's default
  httptools unless given) from 8 concurrent keep-alive connections (``wrk`` where installed,
  Debian package ``wrk``; else 8 Python threads, whose own work takes a share of a
  two-core machine from the server); events per second and the ratio to the baseline,
  met or not against its target (SQLite >= 0.8, PostgreSQL >= 1.0);
- on SQLite, the events per commit that serve shared among them over those rounds
  (its group commit, from ``/metrics``), and their share of the events;
- the CPU time serve's processes spent per request over those rounds (Linux' /proc)
  against the baseline's per event: the ratio of rates where the CPU is the limit,
  which a loaded machine disturbs far less than it does the rates;
- the same requests through FastAPI's route instead of the short way of
  ``casework.workflow.api.hot_path`` (their body sent as another JSON media type, which
  the short way leaves to FastAPI), on the same server: what the short way gains,
  as the ratio of the two rates;
- the server's own work per request both ways: CPU time of the application called
  in-process (ASGI, no sockets, no clients);
- the latency of the same request sent at a steady 100 requests per second (an open
  loop: each request leaves at its time, whatever the last one did); p50 and p99
  (target p99 < 50 ms).

Clients run in a separate process from the server, as a back office's would. The
rates are medians of interleaved rounds (baseline, HTTP, HTTP through FastAPI,
baseline, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from bench.common import backends, postgres_url, report, sqlite_url
from bench.stats import percentile
from casework.storage.tables import cases_table
from casework.workflow import Engine
from casework.workflow.access.tokens import issue
from casework.workflow.api.app import create_app
from casework.workflow.api.hot_path import MEDIA_TYPE
from tests.support.api_server import free_port
from tests.support.asgi import asgi_post

CLIENTS = 8
SHORT = MEDIA_TYPE.decode()
THROUGH_FASTAPI = "application/vnd.casework+json"
"""A JSON media type the short way leaves to FastAPI's route."""
RATE = 100
TARGETS = {"sqlite": 0.8, "postgres": 1.0}
"""The least rate over HTTP, as a ratio of the in-process baseline's, per backend."""
TARGET_P99_MS = 50.0
OPEN = {"customer": "C-1001", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门"}  # fmt: skip


@contextmanager
def _database(backend: str) -> Iterator[str]:
    manager = sqlite_url() if backend == "sqlite" else postgres_url()
    with manager as url:
        yield url.replace("postgresql://", "postgresql+psycopg://")


@contextmanager
def _serve(url: str, workers: int) -> Iterator[str]:
    with _serving(url, workers) as (base, _):
        yield base


@contextmanager
def _serving(url: str, workers: int, parser: str = "httptools") -> Iterator[tuple[str, int]]:
    """``casework serve`` on ``url`` with ``workers`` processes reading requests with
    ``parser``: its address and process id."""
    port = free_port()
    env = {**os.environ, "CASEWORK_DATABASE_URL": url}
    command = [sys.executable, "-m", "casework.workflow.cli", "serve", "--port", str(port),
               "--workers", str(workers), "--http", parser]  # fmt: skip
    child = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)  # noqa: S603
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                if time.monotonic() > deadline or child.poll() is not None:
                    raise RuntimeError("casework serve did not start") from None
                time.sleep(0.1)
        yield base, child.pid
    finally:
        child.send_signal(signal.SIGTERM)
        child.wait(30)


def _server_cpu_us(url: str, token: str, cases: list[str], kind: str, count: int = 500) -> float:
    """CPU microseconds per request of the application itself, called in-process with
    bodies sent as ``kind``."""

    async def all_of(app: Any) -> float:
        start = time.process_time()
        for n in range(count):
            await asgi_note(app, token, cases[n % len(cases)], kind)
        return (time.process_time() - start) / count * 1e6

    with Engine.open(url) as engine:
        return asyncio.run(all_of(create_app(engine)))


async def asgi_note(app: Any, token: str, case_id: str, kind: str) -> None:
    """Post a ``note`` to ``case_id`` through the ASGI application ``app`` itself, its
    body sent as ``kind``."""
    body = json.dumps({"event": "note", "note": "客户来电催促"}).encode()
    headers = [(b"content-type", kind.encode()), (b"authorization", f"Bearer {token}".encode())]
    status, _ = await asgi_post(app, f"/v1/cases/{case_id}/events", body, headers)
    if status != 200:
        raise RuntimeError(f"HTTP {status}")


def _shared(base: str) -> tuple[float, float]:
    """The commits serve shared among events so far, and the events they stored (its
    ``/metrics``; none on PostgreSQL)."""
    text = httpx.get(f"{base}/metrics", timeout=30).text
    found = dict(re.findall(r"^(casework_group_commit\w*_total) (\S+)$", text, re.MULTILINE))
    return (float(found.get("casework_group_commits_total", 0)),
            float(found.get("casework_group_commit_events_total", 0)))  # fmt: skip


def _cpu_s(pid: int) -> float:
    """CPU seconds used so far by process ``pid`` and its live children (Linux' /proc)."""
    clock = os.sysconf("SC_CLK_TCK")
    total, todo = 0.0, [pid]
    while todo:
        proc = Path(f"/proc/{todo.pop()}")
        try:
            fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            children = (proc / "task" / proc.name / "children").read_text().split()
        except OSError:  # gone meanwhile
            continue
        total += (int(fields[11]) + int(fields[12])) / clock  # utime, stime
        todo += [int(c) for c in children]
    return total


def _in_process(url: str, cases: list[str], seconds: float) -> tuple[float, float]:
    """Events per second of ``Engine.fire`` in this process, one thread, and its CPU
    microseconds per event."""
    with Engine.open(url) as engine:
        count, end = 0, time.perf_counter() + seconds
        start, cpu = time.perf_counter(), time.process_time()
        while time.perf_counter() < end:
            engine.fire(cases[count % len(cases)], "note", actor="li.na", note="客户来电催促")
            count += 1
        cpu_us = (time.process_time() - cpu) / count * 1e6
        return count / (time.perf_counter() - start), cpu_us


def events_of(url: str, cases: list[str]) -> int:
    """How many events the cases have: their versions' sum."""
    with Engine.open(url) as engine, engine.db.connect() as conn:
        found = conn.execute(
            select(func.sum(cases_table.c.version)).where(cases_table.c.id.in_(cases))
        ).scalar_one()
    return int(found or 0)


class _Client:
    """One keep-alive HTTP/1.1 connection (the standard library's: light on the client
    side, so the server is what is measured)."""

    def __init__(self, base: str, token: str, kind: str = SHORT) -> None:
        host, port = base.removeprefix("http://").split(":")
        self.connection = http.client.HTTPConnection(host, int(port), timeout=30)
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": kind}

    def note(self, case_id: str) -> None:
        body = json.dumps({"event": "note", "note": "客户来电催促"}).encode()
        self.connection.request("POST", f"/v1/cases/{case_id}/events", body, self.headers)
        answer = self.connection.getresponse()
        answer.read()
        if answer.status != 200:
            raise RuntimeError(f"HTTP {answer.status}")


_WRK_SCRIPT = """
local ids = {%s}
local n = 0
wrk.method = "POST"
wrk.body = '{"event": "note", "note": "客户来电催促"}'
wrk.headers["Content-Type"] = "%s"
wrk.headers["Authorization"] = "Bearer %s"
request = function()
  n = n + 1
  return wrk.format(nil, "/v1/cases/" .. ids[(n %% #ids) + 1] .. "/events")
end
done = function(summary, latency, requests)
  io.write(string.format("casework: %%d %%d %%d\\n", summary.requests, summary.duration,
    summary.errors.status + summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def _over_wrk(base: str, token: str, cases: list[str], seconds: float, kind: str) -> float | None:
    """The rate ``wrk`` (a load generator in C, where installed) measures with 8
    keep-alive connections; ``None`` without it."""
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(_WRK_SCRIPT % (", ".join(f'"{c}"' for c in cases), kind, token))
    try:
        done = subprocess.run(  # noqa: S603
            [wrk, "-t", "2", "-c", str(CLIENTS), "-d", f"{seconds:.0f}s", "-s", script.name, base],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
    finally:
        os.unlink(script.name)
    line = next(x for x in done.stdout.splitlines() if x.startswith("casework: "))
    requests, micros, errors = (int(x) for x in line.split()[1:])
    if errors:
        raise RuntimeError(f"wrk: {errors} failed requests")
    return requests / (micros / 1e6)


def _over_http(base: str, token: str, cases: list[str], seconds: float, kind: str = SHORT) -> float:
    """Events per second from 8 concurrent keep-alive clients sending bodies as ``kind``:
    ``wrk`` where installed (its client work in C leaves the second core to the server),
    else Python threads."""
    measured = _over_wrk(base, token, cases, seconds, kind)
    if measured is not None:
        return measured
    return _over_threads(base, token, cases, seconds, kind)


def _over_threads(base: str, token: str, cases: list[str], seconds: float, kind: str) -> float:
    counts = [0] * CLIENTS
    end = time.perf_counter() + seconds

    def client(n: int) -> None:
        mine, http_client = cases[n::CLIENTS], _Client(base, token, kind)
        while time.perf_counter() < end:
            http_client.note(mine[counts[n] % len(mine)])
            counts[n] += 1

    start = time.perf_counter()
    threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - start)


def _latency(base: str, token: str, cases: list[str], seconds: float) -> list[float]:
    """Latencies in ms of requests leaving at a steady RATE per second."""
    total = int(seconds * RATE)
    latencies: list[float] = []
    lock = threading.Lock()
    start = time.perf_counter() + 0.2

    def sender(n: int) -> None:  # several senders, so a slow answer delays no departure
        http_client = _Client(base, token)
        for i in range(n, total, 4):
            pause = start + i / RATE - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            sent = time.perf_counter()
            http_client.note(cases[i % len(cases)])
            with lock:
                latencies.append((time.perf_counter() - sent) * 1000)

    threads = [threading.Thread(target=sender, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def run(backend: str, seconds: float, rounds: int, parser: str) -> dict[str, Any]:
    """Measure one backend; its figures (rates: the median of interleaved rounds)."""
    with _database(backend) as url:
        with Engine.open(url) as engine:
            token = issue(engine.context.store, "li.na", "agent", None, engine.clock.now()).token
            cases = [engine.open_case(actor="li.na", **OPEN).id for _ in range(CLIENTS * 8)]
        with _serving(url, 1 if backend == "sqlite" else 2, parser) as (base, pid):
            _over_http(base, token, cases, 1.0)  # warm up
            _over_http(base, token, cases, 1.0, THROUGH_FASTAPI)
            baselines, rates, long_rates, cpu, long_cpu, fire_cpu = [], [], [], [], [], []
            served, served_cpu_s, shared_commits, shared_events = 0, 0.0, 0.0, 0.0
            for _ in range(rounds):  # interleaved: a slow moment of the machine hits all
                baseline, cpu_us = _in_process(url, cases, seconds)
                baselines.append(baseline)
                fire_cpu.append(cpu_us)
                events, used, shared = events_of(url, cases), _cpu_s(pid), _shared(base)
                rates.append(_over_http(base, token, cases, seconds))
                served_cpu_s += _cpu_s(pid) - used
                served += events_of(url, cases) - events
                commits, grouped = (b - a for a, b in zip(shared, _shared(base), strict=True))
                shared_commits += commits
                shared_events += grouped
                long_rates.append(_over_http(base, token, cases, seconds, THROUGH_FASTAPI))
                cpu.append(_server_cpu_us(url, token, cases, SHORT))
                long_cpu.append(_server_cpu_us(url, token, cases, THROUGH_FASTAPI))
            baseline, http_rate = statistics.median(baselines), statistics.median(rates)
            long_rate = statistics.median(long_rates)
            cpu_us, long_cpu_us = statistics.median(cpu), statistics.median(long_cpu)
            latencies = _latency(base, token, cases, max(seconds, 10.0))
    in_process_cpu_us, process_cpu_us = statistics.median(fire_cpu), served_cpu_s / served * 1e6
    return {
        "parser": parser,
        "in_process_per_s": round(baseline, 1),
        "http_per_s": round(http_rate, 1),
        "ratio": round(http_rate / baseline, 2),
        "target": TARGETS[backend],
        "in_process_cpu_us": round(in_process_cpu_us, 1),
        "process_cpu_us": round(process_cpu_us, 1),
        "cpu_ratio": round(in_process_cpu_us / process_cpu_us, 2),
        "through_fastapi_per_s": round(long_rate, 1),
        "short_way_gain": round(http_rate / long_rate, 2),
        "server_cpu_us": round(cpu_us, 1),
        "through_fastapi_cpu_us": round(long_cpu_us, 1),
        "short_way_cpu_ratio": round(cpu_us / long_cpu_us, 2),
        "events_per_shared_commit": round(shared_events / max(shared_commits, 1), 1),
        "events_in_shared_commits": round(shared_events / served, 2),
        "p50_ms": round(percentile(latencies, 0.5), 2),
        "p99_ms": round(percentile(latencies, 0.99), 2),
        "requests_timed": len(latencies),
    }


def main() -> None:
    """Run the measurements and print the table and a JSON line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5.0, help="per round and measure")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--http",
        choices=["h11", "httptools"],
        default="httptools",
        help="serve's parser of requests",
    )
    args = parser.parse_args()
    document: dict[str, Any] = {}
    rows: list[tuple[str, str]] = []
    for backend in backends(args.backend):
        figures = run(backend, args.seconds, args.rounds, args.http)
        document[backend] = figures
        workers = "1 process" if backend == "sqlite" else "2 workers"
        workers += f", {args.http}, " + ("wrk" if shutil.which("wrk") else "Python clients")
        met = "met" if figures["ratio"] >= figures["target"] else "NOT met"
        rows += [
            (f"{backend}: Engine.fire in-process", f"{figures['in_process_per_s']:,.0f} events/s"),
            (f"{backend}: HTTP, 8 clients ({workers})",
             f"{figures['http_per_s']:,.0f} events/s = {figures['ratio']:.2f}x "
             f"(target >= {figures['target']}: {met})"),
            (f"{backend}: CPU per event, Engine.fire in-process / serve's processes",
             f"{figures['in_process_cpu_us']:,.0f} / {figures['process_cpu_us']:,.0f} us "
             f"= {figures['cpu_ratio']:.2f}x"),
            *([(f"{backend}: events per shared commit (group commit)",
                f"{figures['events_per_shared_commit']:.1f}, holding "
                f"{figures['events_in_shared_commits']:.0%} of the events over HTTP")]
              if backend == "sqlite" else []),
            (f"{backend}: HTTP through FastAPI, not the short way",
             f"{figures['through_fastapi_per_s']:,.0f} events/s: the short way "
             f"{figures['short_way_gain']:.2f}x of it"),
            (f"{backend}: server CPU per request, short way / FastAPI",
             f"{figures['server_cpu_us']:,.0f} / {figures['through_fastapi_cpu_us']:,.0f} us "
             f"= {figures['short_way_cpu_ratio']:.2f}x"),
            (f"{backend}: latency at {RATE} req/s",
             f"p50 {figures['p50_ms']:.1f} ms, p99 {figures['p99_ms']:.1f} ms "
             f"(target p99 < {TARGET_P99_MS:.0f} ms)"),
        ]  # fmt: skip
    report("casework HTTP API: POST /v1/cases/{id}/events", rows, document)


if __name__ == "__main__":
    main()
