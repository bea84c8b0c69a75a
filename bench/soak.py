"""A simulated month at high speed, then every invariant checked.

    python -m bench.soak [--backend sqlite] [--complaints 100000] [--days 30]

The simulation and its invariants are described in :mod:`tests.support.soak`, which
the test suite runs for four simulated days.
"""

from __future__ import annotations

import argparse

from bench.common import backends, postgres_url, report, sqlite_url
from casework.workflow.cli.logs import configure_logging
from tests.support.soak import simulate


def main() -> None:
    """Run the simulated month and print what happened."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="sqlite")
    parser.add_argument("--complaints", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    configure_logging("error")
    for backend in backends(args.backend):
        urls = sqlite_url if backend == "sqlite" else postgres_url
        with urls() as url:
            o = simulate(url, args.complaints, args.days, args.seed)
        rows = [
            ("complaints", f"{o.complaints:,} over {args.days} simulated days"),
            ("events fired by agents", f"{o.events:,} ({o.refused:,} refused)"),
            ("breaches (level 1)", f"{o.breaches:,}"),
            ("escalation events", f"{o.escalations:,}"),
            ("mails sent", f"{o.mails:,} (SMTP down for one simulated hour)"),
            ("worker restarts", f"{o.restarts}"),
            ("wall time", f"{o.seconds:,.0f} s"),
            *((f"invariant: {name}", "holds" if held else "BROKEN")
              for name, held in o.invariants.items()),
        ]  # fmt: skip
        report(f"Soak on {backend}", rows, {"ok": o.ok, **o.invariants, "complaints": o.complaints,
               "breaches": o.breaches, "mails": o.mails, "seconds": o.seconds})  # fmt: skip
        if not o.ok:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
