"""Clients that send a request's head too slowly are cut off (slowloris).

uvicorn closes a connection that stays idle after a response, but not one that trickles
the head of a request (a header line now and then) or opens and sends a few bytes:
thousands of those, no token needed, hold every file descriptor the server may open
and nobody else is answered. :class:`TimelyH11Protocol` (h11, the default parser of
``casework serve``) gives each connection :data:`HEAD_TIMEOUT_S` to deliver a whole
request head, from when it opens and again after each response; a connection still
short of one then is closed. A request whose head arrived has :data:`BODY_TIMEOUT_S`
to deliver its body (a trickled body held a connection the same way); its answer
then takes as long as it takes (the body's size limit is :mod:`casework.workflow.api.limits`).
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

HEAD_TIMEOUT_S = 30.0
"""How long a connection may take to send a whole request head."""
BODY_TIMEOUT_S = 120.0
"""How long a request may take to send its whole body once its head arrived (10 MiB,
the default attachment limit, at under 90 kB/s)."""


class TimelyH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head is not complete
    :attr:`head_timeout_s` after it opened or after the last response."""

    head_timeout_s: float = HEAD_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """The connection opened: its first request head is due."""
        super().connection_made(transport)
        self._arm_head_timer()

    def on_response_complete(self) -> None:
        """A response went out: the next request head is due (armed first, so that a
        request pipelined behind it counts as arrived)."""
        self._arm_head_timer()
        super().on_response_complete()

    def handle_events(self) -> None:
        """Parse what arrived; a request head that did starts its body's time."""
        super().handle_events()
        cycle = self.cycle
        if cycle is not None and cycle is not getattr(self, "_body_cycle", None):
            self._body_cycle = cycle
            timer: asyncio.TimerHandle | None = getattr(self, "_body_timer", None)
            if timer is not None:
                timer.cancel()
            self._body_timer = self.loop.call_later(self.body_timeout_s, self._body_slow, cycle)

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: nothing is due."""
        for name in ("_head_timer", "_body_timer"):
            timer: asyncio.TimerHandle | None = getattr(self, name, None)
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

    def _body_slow(self, cycle: Any) -> None:
        if self.cycle is cycle and cycle.more_body and not self.transport.is_closing():
            self.transport.close()
