"""Clients that send a request's head too slowly are cut off (slowloris).

uvicorn closes a connection that stays idle after a response, but not one that trickles
the head of a request (a header line now and then) or opens and sends a few bytes:
thousands of those, no token needed, hold every file descriptor the server may open
and nobody else is answered. :class:`TimelyH11Protocol` (h11, the default parser of
``casework serve``) gives each connection :data:`HEAD_TIMEOUT_S` to deliver a whole
request head, from when it opens and again after each response; a connection still
short of one then is closed. A request whose head arrived is never cut off: its body
and its answer take as long as they take (the body's limit is
:mod:`workflow.api.limits`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 30.0
"""How long a connection may take to send a whole request head."""


class TimelyH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete
    :attr:`head_timeout_s` after it opened or after the last response."""

    head_timeout_s: float = HEAD_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """The connection opened: its first request head is due."""
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        """A response went out: the next request head is due (armed first, so that a
        request pipelined behind it counts as arrived)."""
        self._arm_head_timer()
        super().on_response_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: nothing is due."""
        timer: asyncio.TimerHandle | None = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        timer: asyncio.TimerHandle | None = getattr(self, "_head_timer", None)
        if timer is not None:
            timer.cancel()
        waiting = self.cycle  # a request head that arrives makes a new cycle
        self._head_timer = self.loop.call_later(self.head_timeout_s, self._too_slow, waiting)

    def _too_slow(self, waiting: Any) -> None:
        if self.cycle is waiting and not self.transport.is_closing():
            self.transport.close()
