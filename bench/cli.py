"""How fast the ``casework`` command answers, against the libraries it cannot do without.

    python -m bench.cli [--rounds 21]

Each round runs, one after the other (interleaved, so a slow moment of the machine
hits all alike), as fresh processes:

- the baseline: ``python -c "import sqlalchemy, statemachine, structlog, click"``;
- ``casework --help``;
- ``casework fire CASE note`` on a SQLite file holding one case (a note is stored
  as a new event each time: a real transition);
- ``casework show CASE``.

It prints the median wall time of each and the median of its ratios to the baseline
of the same round (paired, so the machine's drift between rounds cancels), each target
as met or not. Targets: ``show`` at most 1.5 times the baseline, ``fire`` at most 1.3
times, ``--help`` at most 1.2 times.

The commands run as an installed casework runs: the ``casework`` script beside this
interpreter (not a version manager's shim, which would add a shell and a second
interpreter search to casework's side only), and with their modules' bytecode written
once during the warm-up even where ``PYTHONDONTWRITEBYTECODE`` is set, as an installed
package has it (the baseline's libraries have theirs already).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.common import report, sqlite_url, verdict
from casework.workflow import Engine

BASELINE = [sys.executable, "-c", "import sqlalchemy, statemachine, structlog, click"]
TARGETS = {"show": 1.5, "fire": 1.3, "--help": 1.2}
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _casework() -> list[str]:
    beside = Path(sys.executable).with_name("casework")
    found = str(beside) if beside.is_file() else shutil.which("casework")
    return [found] if found else [sys.executable, "-m", "casework.workflow.cli"]


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=ENV)  # noqa: S603
    return time.perf_counter() - start


def main() -> None:
    """Time the commands in interleaved rounds and print medians and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    casework = _casework()
    with sqlite_url() as url:
        with Engine.open(url) as engine:
            case_id = engine.open_case(
                customer="C-1001", channel="phone", category="service_delayed",
                summary="师傅没有按约上门", actor="li.na",
            ).id  # fmt: skip
        commands = {
            "baseline": BASELINE,
            "--help": [*casework, "--help"],
            "fire": [
                *casework,
                "--db",
                url,
                "fire",
                case_id,
                "note",
                "--actor",
                "li.na",
                "--note",
                "客户来电催促",
            ],
            "show": [*casework, "--db", url, "show", case_id],
        }
        for command in commands.values():  # warm the file cache once
            _wall(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.rounds):
            for name, command in commands.items():
                times[name].append(_wall(command))
    medians = {name: statistics.median(values) for name, values in times.items()}
    ratios = {
        name: statistics.median(t / b for t, b in zip(values, times["baseline"], strict=True))
        for name, values in times.items()
    }
    rows = []
    for name, median in medians.items():
        ratio = ratios[name]
        target = TARGETS.get(name)
        said = "" if target is None else f" ({verdict(ratio, target, at_most=True)})"
        rows.append((f"casework {name}" if name != "baseline" else "baseline imports",
                     f"{median * 1000:.0f} ms, {ratio:.2f}x baseline{said}"))  # fmt: skip
    report(
        f"CLI wall time, median of {args.rounds} interleaved rounds (ratios taken round by round)",
        rows,
        {
            name: {
                "median_s": round(m, 4),
                "ratio": round(ratios[name], 3),
                **(
                    {"target": TARGETS[name], "met": ratios[name] <= TARGETS[name]}
                    if name in TARGETS
                    else {}
                ),
            }
            for name, m in medians.items()
        },
    )


if __name__ == "__main__":
    main()
