"""``casework simulate`` against ``casework verify``, over the same history in one run.

    python -m bench.simulate [--events 1000000] [--backend both]

A history of about ``--events`` events (ten per complaint) is generated with real
machine folds and hash chains. Then, in one process each:

(a) ``Engine.verify()``: every chain hashed, every case replayed and compared with its
    row and pending deadlines (the baseline).
(b) ``simulate`` of a proposed policy whose first response is due one second after
    receipt and resolution four: every case is replayed under it, its warnings and
    breaches fired on the way as the worker would have, beside what happened.

The ratio (b)/(a) is the figure #19 asks for (target >= 0.5).
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, timedelta
from typing import Any

from bench.common import T0, backends, postgres_url, report, sqlite_url
from bench.history_gen import generate_history
from casework.machines import COMPLAINT_V1
from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
from casework.workflow import Engine
from casework.workflow.display.periods import Period
from casework.workflow.sla.whatif import simulate

PROPOSED = {
    **DEFAULT_DOCUMENT,
    "name": "seconds",
    "clocks": {
        **DEFAULT_DOCUMENT["clocks"],
        "first_response": {**DEFAULT_DOCUMENT["clocks"]["first_response"], "within_s": 1},
        "resolution": {**DEFAULT_DOCUMENT["clocks"]["resolution"], "within_s": 4},
    },
}
"""Targets of seconds: every generated case is warned and breaches on the way."""


def run_backend(url: str, events: int) -> dict[str, Any]:
    """Both rates over one generated history at ``url``."""
    generate_history(url, events)
    policy = policy_from_document(PROPOSED, COMPLAINT_V1.states, COMPLAINT_V1.events)
    period = Period(T0 - timedelta(days=1), T0 + timedelta(days=3650), UTC)
    with Engine.open(url) as engine:
        start = time.perf_counter()
        verified = engine.verify(workers=1)
        verify_s = time.perf_counter() - start
        if not verified.ok:
            raise SystemExit(f"generated history failed verification: {verified.problems[:3]}")
        start = time.perf_counter()
        simulated = simulate(engine.context, policy, period)
        simulate_s = time.perf_counter() - start
    if simulated["events"] != verified.events:
        raise SystemExit(f"simulate read {simulated['events']} events, verify {verified.events}")
    proposed = simulated["totals"]["proposed"]
    return {
        "events": verified.events,
        "cases": simulated["cases"],
        "verify_events_per_s": verified.events / verify_s,
        "simulate_events_per_s": simulated["events"] / simulate_s,
        "ratio": verify_s / simulate_s,
        "proposed_breaches": sum(r["proposed"]["breached"] for r in simulated["by_clock"]),
        "proposed_mails": proposed.get("mails", 0),
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    args = parser.parse_args()
    for backend in backends(args.backend):
        with sqlite_url() if backend == "sqlite" else postgres_url() as url:
            figures = run_backend(url, args.events)
        rows = [
            ("(a) verify, one process", f"{figures['verify_events_per_s']:,.0f} events/s"),
            (
                "(b) simulate",
                f"{figures['simulate_events_per_s']:,.0f} events/s "
                f"over {figures['events']:,} events, {figures['cases']:,} cases, "
                f"{figures['proposed_mails']:,} mails fired on the way",
            ),
            ("(b)/(a)", f"{figures['ratio']:.2f} (target >= 0.50)"),
        ]
        report(f"simulate on {backend}", rows, figures)


if __name__ == "__main__":
    main()
