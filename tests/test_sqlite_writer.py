"""The writer connection an engine keeps between calls on a SQLite file: threads take
turns on it, a forked process opens its own, a failed write lets it go, closing the
engine closes it."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from casework.workflow import Engine, FixedClock, StorageFailure
from tests.support import open_sample
from tests.support.crash import holds_in_a_child


def _files_open_on(path: Path) -> int:
    """How many of this process's file descriptors are on ``path``."""
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target == str(path)
    return count


def test_threads_take_turns_on_the_kept_writer(tmp_path: Path, clock: FixedClock) -> None:
    with Engine.open(f"sqlite:///{tmp_path / 'c.db'}", clock=clock) as engine:
        ids = [open_sample(engine) for _ in range(4)]
        failures: list[BaseException] = []

        def fire_on(case_id: str) -> None:
            try:
                for _ in range(25):
                    engine.fire(case_id, "note", actor="agent", data={"note": "called"})
            except BaseException as err:
                failures.append(err)

        threads = [threading.Thread(target=fire_on, args=(case_id,)) for case_id in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert failures == []
        assert [engine.get(case_id).version for case_id in ids] == [26] * 4
        assert engine.verify().ok
        assert engine.context.store.held() == 0


def test_a_group_holds_one_connection(tmp_path: Path, clock: FixedClock) -> None:
    """A group transaction runs on a pooled connection, not on the kept writer."""
    with Engine.open(f"sqlite:///{tmp_path / 'c.db'}", clock=clock) as engine:
        case_id = open_sample(engine)
        store = engine.context.store
        with store.grouped() as conn:
            engine.fire(case_id, "note", actor="agent", data={"note": "grouped"}, connection=conn)
            assert store.held() == 1
        assert store.held() == 0


def _opens_its_own_in_a_child(path: Path, call: Callable[[], object]) -> bool:
    """Whether ``call``, made in a process forked from this one, succeeds on a connection
    to ``path`` of the child's own (a SQLite connection carried across a fork is still
    the parent's)."""

    def opens_its_own() -> bool:
        before = _files_open_on(path)
        call()
        return _files_open_on(path) > before

    return holds_in_a_child(opens_its_own)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_writes_on_a_connection_of_its_own(
    tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "c.db"
    with Engine.open(f"sqlite:///{path}", clock=clock) as engine:
        case_id = open_sample(engine)
        engine.fire(case_id, "note", actor="agent", data={"note": "before the fork"})
        assert _opens_its_own_in_a_child(
            path, lambda: engine.fire(case_id, "note", actor="agent", data={"note": "in the child"})
        )
        engine.fire(case_id, "note", actor="agent", data={"note": "after the child"})
        notes = [event.data.get("note") for event in engine.history(case_id)]
        assert notes[-3:] == ["before the fork", "in the child", "after the child"]
        assert engine.verify().ok


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_process_reads_on_a_connection_of_its_own(
    tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "c.db"
    with Engine.open(f"sqlite:///{path}", clock=clock) as engine:
        case_id = open_sample(engine)
        engine.get(case_id)  # the pool keeps the connection it read on
        assert _opens_its_own_in_a_child(path, lambda: engine.get(case_id))
        assert engine.get(case_id).id == case_id


def test_a_failed_write_lets_the_writer_go_and_the_next_one_succeeds(
    tmp_path: Path, clock: FixedClock
) -> None:
    path = tmp_path / "c.db"
    with Engine.open(f"sqlite:///{path}", clock=clock) as engine:
        case_id = open_sample(engine)
        with sqlite3.connect(path) as other:  # a statement that fails inside the driver
            other.execute(
                "CREATE TRIGGER refuse AFTER INSERT ON events "
                "BEGIN INSERT INTO no_such_table VALUES (1); END"
            )
        with pytest.raises(StorageFailure, match="no_such_table"):
            engine.fire(case_id, "note", actor="agent", data={"note": "refused"})
        assert engine.get(case_id).version == 1  # nothing half-written
        with sqlite3.connect(path) as other:
            other.execute("DROP TRIGGER refuse")
        assert engine.fire(case_id, "note", actor="agent", data={"note": "taken"}).version == 2
        assert engine.verify().ok


def test_closing_the_engine_closes_its_writer(tmp_path: Path, clock: FixedClock) -> None:
    path = tmp_path / "c.db"
    engine = Engine.open(f"sqlite:///{path}", clock=clock)
    case_id = open_sample(engine)
    engine.fire(case_id, "note", actor="agent", data={"note": "called"})
    assert _files_open_on(path) >= 1
    engine.close()
    assert _files_open_on(path) == 0


def test_closing_waits_for_a_write_another_thread_runs(tmp_path: Path, clock: FixedClock) -> None:
    """A shutdown closing the engine while a thread writes: the write ends first, then
    the writer is closed; nothing is left half-written."""
    engine = Engine.open(f"sqlite:///{tmp_path / 'c.db'}", clock=clock)
    case_id = open_sample(engine)
    writing, failures = threading.Event(), []

    def write() -> None:
        try:
            for _ in range(200):
                engine.fire(case_id, "note", actor="agent", data={"note": "called"})
                writing.set()
        except BaseException as err:
            failures.append(err)

    thread = threading.Thread(target=write)
    thread.start()
    writing.wait(10)
    engine.close()
    thread.join()
    assert failures == []
    with Engine.open(f"sqlite:///{tmp_path / 'c.db'}", clock=clock) as again:
        assert again.get(case_id).version == 201
        assert again.verify().ok
