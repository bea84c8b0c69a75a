"""How fast the console's busiest page answers: an agent's queue with 10,000 open cases.

    python -m bench.console [--cases 10000] [--loads 21]

One agent owns every open case (the worst queue there can be); the page shows the 200
next due and says how many there are. Each load is a real request to ``casework serve``'s
application on loopback, signed in with a session cookie; the figure is the median
time to the last byte (target: under 300 ms), beside the baseline of ``/healthz``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import httpx

from bench.common import report, sqlite_url
from casework.workflow import Engine
from tests.support.api_server import serving

TARGET_MS = 300.0


def _median_ms(client: httpx.Client, path: str, loads: int) -> float:
    times = []
    for _ in range(loads):
        start = time.perf_counter()
        answer = client.get(path)
        answer.raise_for_status()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    """Fill a database, then time the queue page."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--loads", type=int, default=21)
    args = parser.parse_args()
    with sqlite_url() as url, Engine.open(url) as engine:
        for n in range(args.cases):
            engine.open_case(
                customer=f"CUST-{n:05d}", channel="phone", category="service_delayed",
                summary="师傅没有按约上门", actor="li.na", branch="东莞长安店",
            )  # fmt: skip
        with serving(engine) as served, httpx.Client(base_url=served.url, timeout=60) as client:
            form = client.get("/login").text
            csrf = form.split('name="csrf" value="', 1)[1].split('"', 1)[0]
            signed_in = client.post("/login", data={"token": served.token(), "csrf": csrf})
            assert signed_in.status_code == 303, signed_in.text
            client.get("/queue")  # warm
            queue = _median_ms(client, "/queue", args.loads)
            health = _median_ms(client, "/healthz", args.loads)
    rows = [
        (f"GET /queue, {args.cases:,} open cases of one agent",
         f"{queue:.0f} ms (target < {TARGET_MS:.0f} ms)"),
        ("GET /healthz (the floor)", f"{health:.1f} ms"),
    ]  # fmt: skip
    document = {"cases": args.cases, "queue_ms": round(queue, 1), "healthz_ms": round(health, 2)}
    report("casework console: the queue page", rows, document)


if __name__ == "__main__":
    main()
