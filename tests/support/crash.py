"""A crash harness: run work in a forked process, kill it with SIGKILL at seeded points;
and :func:`holds_in_a_child`, a check run in a forked process.

The child reports progress as short lines on a pipe (one ``os.write`` each, so a line
is never torn); the harness kills it after a seeded number of lines, so every run
kills at the same points. Forking keeps a restart cheap (no interpreter start).
"""

from __future__ import annotations

import os
import random
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


class ProgressLog:
    """A logger that reports each line it is given as a progress line (a kill point)."""

    def __init__(self, say: Callable[[str], None]) -> None:
        self.say = say

    def info(self, event: str, **_: Any) -> None:
        """Report ``event``."""
        self.say(event)

    warning = info

    def exception(self, event: str, **_: Any) -> None:
        """Report ``event``."""
        self.say(event)


@dataclass
class Runs:
    """What the harness saw: kills made, runs that finished, lines read in all."""

    kills: int = 0
    finished: int = 0
    lines: list[str] = field(default_factory=list)


def holds_in_a_child(check: Callable[[], bool]) -> bool:
    """Whether ``check()``, run in a process forked from this one, returns true (false
    if it raises)."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            code = 0 if check() else 2
        except BaseException:
            code = 1
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status) == 0


def _read_line(fd: int, buffer: bytearray) -> str | None:
    while b"\n" not in buffer:
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        buffer.extend(chunk)
    line, _, rest = bytes(buffer).partition(b"\n")
    buffer[:] = rest
    return line.decode()


def _run_child(work: Callable[[Callable[[str], None]], None], fd: int) -> None:
    def say(line: str) -> None:
        os.write(fd, line.encode() + b"\n")

    code = 0
    try:
        work(say)
        say("done")
    except BaseException:  # the harness reads the exit code; details go to stderr
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def run_with_kills(
    work: Callable[[Callable[[str], None]], None],
    *,
    kills: int,
    seed: int,
    max_lines: int = 12,
    max_runs: int = 1000,
) -> Runs:
    """Run ``work(say)`` in forked children until it finishes after ``kills`` kills.

    Each child is killed after a seeded number of progress lines (1..``max_lines``)
    until ``kills`` were made, or until a child finds nothing left to do (it says only
    "done"); then children run to the end. A child that fails on its own fails the
    harness.
    """
    rng = random.Random(seed)
    runs = Runs()
    for _ in range(max_runs):
        read_fd, write_fd = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            os.close(read_fd)
            _run_child(work, write_fd)
        os.close(write_fd)
        budget = rng.randint(1, max_lines) if runs.kills < kills else None
        buffer = bytearray()
        seen = 0
        done = False
        try:
            while True:
                line = _read_line(read_fd, buffer)
                if line is None:
                    break
                runs.lines.append(line)
                if line == "done":
                    done = True
                    break
                seen += 1
                if budget is not None and seen >= budget:
                    os.kill(pid, signal.SIGKILL)
                    runs.kills += 1
                    break
        finally:
            os.close(read_fd)
            _, status = os.waitpid(pid, 0)
        if done:
            if os.waitstatus_to_exitcode(status) != 0:
                raise AssertionError(f"the child failed: exit {os.waitstatus_to_exitcode(status)}")
            runs.finished += 1
            if runs.kills >= kills or seen == 0:  # killed enough, or nothing left to do
                return runs
        elif budget is None:
            raise AssertionError(f"a child not meant to be killed died: status {status}")
    raise AssertionError(f"work did not finish within {max_runs} runs")
