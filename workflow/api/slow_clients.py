"""Clients that send a request's head too slowly are cut off (slowloris), and a request
asking to upgrade to another protocol is served as the HTTP/1.1 request it is.

uvicorn closes a connection that stays idle after a response, but not one that trickles
the head of a request (a header line now and then) or opens and sends a few bytes:
thousands of those, no token needed, hold every file descriptor the server may open
and nobody else is answered. The protocols here (:class:`TimelyHttpToolsProtocol`,
httptools, the default parser of ``casework serve``, and :class:`TimelyH11Protocol`,
h11) give each connection :data:`HEAD_TIMEOUT_S` to deliver a whole request head, from
when it opens and again after each response; a connection still short of one then is
closed. A request whose head arrived has :data:`BODY_TIMEOUT_S` to deliver its body (a
trickled body held a connection the same way); its answer then takes as long as it
takes (the body's size limit is :mod:`casework.workflow.api.limits`). One timer per
connection keeps both times, looking again at most every :data:`HEAD_TIMEOUT_S`: a
request arms none of its own.

A client that asks ``Upgrade: h2c`` on ``http://`` (the JDK's ``HttpClient``, ``curl
--http2``) is answered over HTTP/1.1 (RFC 9110 7.8 lets a server ignore the header).
h11 does so itself; uvicorn's httptools protocol served such a request without its
body (the parser stops at the head of a request that asks to upgrade, and uvicorn
upgrades only to WebSocket), so :class:`TimelyHttpToolsProtocol` hands the parser the
body again with its framing, the request kept as it arrived.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httptools
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

HEAD_TIMEOUT_S = 30.0
"""How long a connection may take to send a whole request head."""
BODY_TIMEOUT_S = 120.0
"""How long a request may take to send its whole body once its head arrived (10 MiB,
the default attachment limit, at under 90 kB/s)."""

_FRAMING = (b"content-length", b"transfer-encoding")
"""The headers that frame a request's body."""


class _Timely(asyncio.Protocol):
    """What both protocols share: one timer per connection, closing it when a request
    head or body is late. A protocol notes :meth:`_idle` when a head is due and
    :meth:`_began` when a request's head arrived."""

    head_timeout_s: float = HEAD_TIMEOUT_S
    body_timeout_s: float = BODY_TIMEOUT_S
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any

    _idle_since = 0.0
    _began_at = 0.0
    _begun: Any = None
    _timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """The connection opened: its first request head is due."""
        super().connection_made(transport)
        self._start_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        """The connection closed: nothing is due."""
        self._stop_timer()
        super().connection_lost(exc)

    def _idle(self) -> None:
        """From now on a request head is due."""
        self._idle_since = self.loop.time()

    def _began(self, cycle: Any) -> None:
        """``cycle``'s head arrived: its body is due from now on."""
        self._begun = cycle
        self._began_at = self.loop.time()

    def _start_timer(self) -> None:
        self._idle()
        self._timer = self.loop.call_later(self._tick(), self._look)

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _queued(self) -> bool:
        """Whether the last request waits behind another (its body unread meanwhile)."""
        return False

    def _tick(self) -> float:
        return min(self.head_timeout_s, self.body_timeout_s)

    def _look(self) -> None:
        """Close the connection if what is due is late; else look again when it is
        due, or within a tick."""
        if self.transport.is_closing():
            self._timer = None
            return
        now, cycle, begun = self.loop.time(), self.cycle, self._begun
        due = None
        if cycle is None or cycle.response_complete:  # waiting for a request head
            due = self._idle_since + self.head_timeout_s
        elif begun is not None and begun.more_body and not self._queued():
            due = self._began_at + self.body_timeout_s
        if due is not None and now >= due:
            self._timer = None
            self.transport.close()
            return
        after = now + self._tick()
        self._timer = self.loop.call_at(after if due is None else min(due, after), self._look)


class TimelyHttpToolsProtocol(_Timely, HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head or body
    is late, and serving a request that asks to upgrade to anything but WebSocket (where
    uvicorn has a WebSocket library) as a plain request, body and all."""

    _replaying = False
    """While the parser reads the framing given back to it, not a request's head."""
    _held: Any = None
    """The cycle of a request that asked to upgrade, whose body the parser skipped."""

    def on_response_complete(self) -> None:
        """A response went out: the next request head is due (unless one pipelined
        behind it arrived already, whose body's time starts now)."""
        self._idle()
        queued = self._queued()
        super().on_response_complete()
        if queued and not self._queued():
            self._began(self._begun)

    def _queued(self) -> bool:
        return bool(self.pipeline)

    def data_received(self, data: bytes) -> None:
        """Parse what arrived; after the head of a request that asks to upgrade the
        parser stops, and is given the body's framing to read that body on."""
        self._unset_keepalive_if_required()
        while True:
            try:
                self.parser.feed_data(data)
                return
            except httptools.HttpParserError:
                message = "Invalid HTTP request received."
                self.logger.warning(message)
                self.send_400_response(message)
                return
            except httptools.HttpParserUpgrade as upgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                    return
                data = self._framing() + data[upgrade.args[0] :]

    def _framing(self) -> bytes:
        """A new parser, and a head for it to read the held request's body by."""
        self.parser = httptools.HttpRequestParser(self)
        with contextlib.suppress(AttributeError):  # httptools < 0.6.3 has no leniencies
            self.parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._replaying = True
        lines = [b"%s: %s\r\n" % (n, v) for n, v in self.headers if n in _FRAMING]
        return b"".join([b"PUT / HTTP/1.1\r\n", *lines, b"\r\n"])

    def on_message_begin(self) -> None:
        if not self._replaying:
            super().on_message_begin()

    def on_url(self, url: bytes) -> None:
        if not self._replaying:
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if not self._replaying:
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        if self._replaying:  # what follows is the held request's body
            self._replaying = False
            self._held = None
            return
        super().on_headers_complete()
        cycle = self.cycle
        if self.parser.should_upgrade() and not self._should_upgrade():
            self._held = cycle
        if cycle is not self._begun:
            self._began(cycle)
            cycle.transport = _HeadWithBody(self.transport, cycle)

    def on_message_complete(self) -> None:
        if self._held is None:  # a held request's body is still to come
            super().on_message_complete()


class _HeadWithBody:
    """The transport of one request's cycle, holding the head of an answer that
    declares its length to write it with the body: one write, and one TCP segment, for
    a short answer, not two."""

    __slots__ = ("_cycle", "_head", "_started", "_transport")

    def __init__(self, transport: asyncio.Transport, cycle: Any) -> None:
        self._transport = transport
        self._cycle = cycle
        self._head: bytes | None = None
        self._started = False

    def write(self, data: bytes) -> None:
        """Write ``data``; hold it if it is the head of an answer whose body follows."""
        if self._head is not None:
            data, self._head = self._head + data, None
        elif not self._started and self._cycle.response_started:  # the answer's head
            self._started = True
            cycle = self._cycle
            if (
                cycle.chunked_encoding is False
                and cycle.expected_content_length
                and cycle.scope["method"] != "HEAD"
            ):
                self._head = data
                return
        self._transport.write(data)

    def is_closing(self) -> bool:
        """Whether the connection is closing or closed."""
        return self._transport.is_closing()

    def close(self) -> None:
        """Write what is held, and close the connection."""
        if self._head is not None:
            self._transport.write(self._head)
            self._head = None
        self._transport.close()


class TimelyH11Protocol(_Timely, H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request head or body is
    late."""

    def on_response_complete(self) -> None:
        """A response went out: the next request head is due (noted first, so that a
        request pipelined behind it counts as arrived)."""
        self._idle()
        super().on_response_complete()

    def handle_events(self) -> None:
        """Parse what arrived; a request head that did starts its body's time."""
        super().handle_events()
        if self.cycle is not None and self.cycle is not self._begun:
            self._began(self.cycle)
