"""The export streamed: a thread writes it from one snapshot into a bounded queue while
an HTTP answer (the API's ``/v1/export``, the console's download) reads it."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from datetime import datetime
from typing import TYPE_CHECKING

from casework.workflow.audit.export import write_export

if TYPE_CHECKING:
    from casework.workflow.context import Context

CHUNKS_AHEAD = 64
"""Chunks the export writer may run ahead of a slow reader."""


class _Pipe:
    """A text file whose writes a reader takes from a bounded queue."""

    def __init__(self) -> None:
        self.chunks: queue.Queue[str | BaseException | None] = queue.Queue(CHUNKS_AHEAD)
        self.cancelled = threading.Event()
        self._buffer: list[str] = []
        self._size = 0

    def write(self, text: str) -> int:
        if self.cancelled.is_set():
            raise BrokenPipeError("the client went away")
        self._buffer.append(text)
        self._size += len(text)
        if self._size >= 65_536:
            self.flush()
        return len(text)

    def flush(self) -> None:
        if self._buffer:
            self.chunks.put("".join(self._buffer))
            self._buffer, self._size = [], 0


def export_stream(
    context: Context, since: datetime | None, until: datetime | None
) -> Iterator[bytes]:
    """The export's lines as UTF-8 chunks, written by a thread from one snapshot while
    they are read (a reader that goes away stops the writer)."""
    pipe = _Pipe()
    now = context.clock.now()

    def produce() -> None:
        try:
            policies = context.store.deadlines.policies()
            write_export(
                context.store, pipe, fmt="jsonl", since=since, until=until,  # type: ignore[arg-type]
                policies=policies, now=now,
            )  # fmt: skip
            pipe.flush()
            pipe.chunks.put(None)
        except BaseException as err:  # handed to the reader, which ends the response
            pipe.chunks.put(err)

    writer = threading.Thread(target=produce, name="casework-export", daemon=True)
    writer.start()
    try:
        while True:
            chunk = pipe.chunks.get()
            if chunk is None:
                return
            if isinstance(chunk, BaseException):
                return  # the lines so far stand; an export without its end record is incomplete
            yield chunk.encode("utf-8")
    finally:
        pipe.cancelled.set()
        while writer.is_alive():  # let a blocked writer see the cancellation
            try:
                pipe.chunks.get_nowait()
            except queue.Empty:
                writer.join(0.05)
