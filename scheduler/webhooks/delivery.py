"""Delivering webhooks: claim due deliveries, ``POST`` each signed, record the answer.

A delivery is marked sent only after its receiver answered 2xx; any other answer, a
timeout or a refused connection retries it with backoff until its attempts run out,
then it is a dead letter carrying the last answer. A receiver out of reach (its name
does not resolve, the connection is refused, or no whole answer comes in time) pauses
its subscription for as long as a delivery waits after its first failure: the
deliveries to it that a run claims meanwhile are put off to the pause's end with no
attempt counted, and while every subscription is paused a run claims nothing, so an
outage costs one attempt a pause, not a connection, a transaction and a log line for
each delivery. A crash between the answer and the
record leaves the delivery claimed; its lease runs out and a later run sends it again
with the same ``webhook-id``, so receivers that remember ids see each event once.
Redirects are not followed (a 3xx is a failure): a subscription names its final URL.

``[webhooks] timeout_s`` bounds each delivery as a whole, however slowly a receiver
drips its answer; the worker sends webhooks on a thread of their own, so mail never
waits for a receiver. Each delivery resolves its host again, refuses internal addresses
that ``allowed_hosts`` does not name (:mod:`casework.workflow.webhooks.targets`) and
connects to the address it checked. A receiver's answer is kept as printable text.
"""

from __future__ import annotations

import contextlib
import http.client
import secrets
import socket
import ssl
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import orjson

from casework.scheduler.engine_api import EngineApi
from casework.scheduler.pauses import Pause
from casework.scheduler.reports import RunReport
from casework.workflow.errors import CaseworkError
from casework.workflow.logs import library_logger
from casework.workflow.outbox.mail import Accepted, Outbox, OutboxMail, WebhookRecord
from casework.workflow.webhooks import subscriptions, targets
from casework.workflow.webhooks.queue import ANSWER_CHARS, answer_text
from casework.workflow.webhooks.settings import WebhookSettings
from casework.workflow.webhooks.signing import headers

USER_AGENT = "casework-webhooks/1"


@dataclass
class WebhookReport(RunReport):
    """What one run did."""

    sent: int = 0
    retried: int = 0
    dead: int = 0
    put_off: int = 0
    """Deliveries to a paused subscription, put off to the pause's end."""
    errors: list[str] = field(default_factory=list)


class WebhookFailure(Exception):
    """A receiver did not take a delivery; ``permanent`` when retrying cannot help,
    ``unreachable`` when no answer came (a name that does not resolve, a refused
    connection, a timeout)."""

    def __init__(self, text: str, *, permanent: bool = False, unreachable: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent
        self.unreachable = unreachable


class _Budget:
    """The whole exchange's time: when it runs out, its sockets are shut down, so a
    receiver that drips bytes cannot hold a delivery (nor the deliveries behind it)
    longer than ``seconds``, however slowly it answers."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Budget:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()

    def left(self) -> float:
        """Seconds left (never zero: a socket timeout of zero would mean non-blocking)."""
        return max(0.001, self._ends - time.monotonic())

    def watch(self, sock: socket.socket) -> socket.socket:
        """Shut ``sock`` down when the time runs out (at once if it has)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)
        return sock

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    # the plain socket's shutdown, under TLS too: a read blocked in the TLS layer ends
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _connect(addresses: Sequence[str], port: int, budget: _Budget) -> socket.socket:
    """A connection to the first of the checked ``addresses`` that answers."""
    failure: OSError = OSError("no address to connect to")
    for address in addresses:
        try:
            return budget.watch(socket.create_connection((address, port), budget.left()))
        except OSError as err:
            failure = err
    raise failure


class _Pinned(http.client.HTTPConnection):
    """HTTP to the addresses that were checked, whatever the name resolves to by now."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], budget: _Budget) -> None:
        super().__init__(host, port, timeout=budget.seconds)
        self.addresses = addresses
        self.budget = budget

    def connect(self) -> None:
        """Connect to a checked address within the budget."""
        self.sock = _connect(self.addresses, self.port, self.budget)


class _PinnedTLS(http.client.HTTPSConnection):
    """HTTPS to the checked address; the certificate is checked against the host name."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], budget: _Budget) -> None:
        self.tls = ssl.create_default_context()
        super().__init__(host, port, timeout=budget.seconds, context=self.tls)
        self.addresses = addresses
        self.budget = budget

    def connect(self) -> None:
        """Connect to a checked address and shake hands, within the budget."""
        raw = _connect(self.addresses, self.port, self.budget)
        try:
            sock = self.tls.wrap_socket(
                raw, server_hostname=self.host, do_handshake_on_connect=False
            )
        except BaseException:
            raw.close()
            raise
        self.sock = self.budget.watch(sock)
        sock.do_handshake()


def post(
    url: str,
    body: bytes,
    signed: Mapping[str, str],
    timeout_s: float,
    settings: WebhookSettings | None = None,
) -> int:
    """``POST`` one delivery; the status of a 2xx answer, else :class:`WebhookFailure`.

    ``timeout_s`` bounds the whole exchange (connecting, sending, the answer), not each
    read. The host's addresses are checked against ``settings`` (:mod:`.targets`) now,
    and the connection goes to the address checked. A failure's text is printable.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    https = parts.scheme == "https"
    try:
        port = parts.port or (443 if https else 80)
        addresses = targets.resolve(host, port)
    except (OSError, UnicodeError, ValueError) as err:
        raise WebhookFailure(
            answer_text(f"cannot resolve {host}: {err}"), unreachable=True
        ) from None
    refused = targets.refusal(host, addresses, settings or WebhookSettings())
    if refused is not None:
        raise WebhookFailure(answer_text(f"refused: {refused}"))
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    kind = _PinnedTLS if https else _Pinned
    with _Budget(timeout_s) as budget:
        connection = kind(host, port, [str(a) for a in addresses], budget)
        try:
            connection.request(
                "POST",
                target,
                body=body,
                headers={"Content-Type": "application/json", "User-Agent": USER_AGENT, **signed},
            )
            answer = connection.getresponse()
            status = int(answer.status)
            text = "" if 200 <= status < 300 else answer_text(answer.read(ANSWER_CHARS))
        except (OSError, http.client.HTTPException, ValueError) as err:
            if budget.expired or isinstance(err, TimeoutError):  # ours, or the socket's own
                raise _timed_out(timeout_s) from None
            text = answer_text(f"{type(err).__name__}: {err}")
            raise WebhookFailure(text, unreachable=connection.sock is None) from None
        finally:
            connection.close()
    if budget.expired:  # what came was cut short: the receiver cannot have meant it
        raise _timed_out(timeout_s)
    if 200 <= status < 300:
        return status
    raise WebhookFailure(f"HTTP {status}" + (f": {text}" if text else ""))


def _timed_out(timeout_s: float) -> WebhookFailure:
    return WebhookFailure(f"timed out: no whole answer within {timeout_s:g} s", unreachable=True)


class WebhookDeliverer:
    """Sends the webhook deliveries of one engine's outbox."""

    def __init__(self, engine: EngineApi, *, batch: int = 50, logger: Any = None) -> None:
        self.engine = engine
        self.outbox = Outbox(engine.context, kind="webhook")
        self.settings = engine.settings.webhooks
        self.batch = batch
        self._log = logger if logger is not None else library_logger()
        self._paused: dict[str, Pause] = {}
        """The subscriptions (by id) whose receiver was out of reach, since when."""
        self._live: frozenset[str] = frozenset()
        """The subscriptions not removed, as the last claim found them."""

    def deliver_due(self, due_by: datetime | None = None) -> WebhookReport:
        """Try every delivery due by ``due_by`` (default: now) once; what happened. The
        deliveries to a paused subscription are put off to its pause's end, and while
        every subscription is paused nothing is claimed."""
        now = self.engine.clock.now()
        report = WebhookReport()
        if self.pause_ends(now) is not None:
            return report
        due_by = due_by or now
        token = secrets.token_hex(16)
        while True:
            claim = self.outbox.claim(token, limit=self.batch, due_by=due_by)
            if not claim.mails:
                return report
            hooks = subscriptions.by_id(self.engine.context.store, removed=True)
            self._live = frozenset(k for k, h in hooks.items() if h.removed_at is None)
            whole = self._send_claim(claim.mails, hooks, token, report)
            if not whole or self.pause_ends(self.engine.clock.now()) is not None:
                return report

    def _send_claim(
        self,
        rows: Sequence[OutboxMail],
        hooks: Mapping[str, WebhookRecord],
        token: str,
        report: WebhookReport,
    ) -> bool:
        """Send one claim's deliveries, those to a paused subscription put off; ``False``
        where the lease ran short and the rest went back."""
        budget = time.monotonic() + self.settings.lease_s / 2
        later: dict[datetime, list[OutboxMail]] = {}
        whole = True
        for index, row in enumerate(rows):
            if time.monotonic() > budget:  # give the rest back before the lease lapses
                self.outbox.release(rows[index:], token)
                whole = False
                break
            key = str(row.body.get("webhook"))
            ends = self._hook_pause(key, self.engine.clock.now())
            if ends is None:
                self._send(row, hooks.get(key), token, report)
            else:
                later.setdefault(ends, []).append(row)
        for ends, put_off in later.items():
            report.put_off += self.outbox.release(put_off, token, at=ends)
        return whole

    def pause_ends(self, now: datetime) -> datetime | None:
        """When the first pause ends if every subscription is paused at ``now`` (a run
        before then would send nothing); else ``None``. Before it says so it reads the
        subscriptions again: one added since is not paused."""
        if self._all_paused(now) is None:
            return None
        with contextlib.suppress(CaseworkError):  # else as the last claim found them
            self._live = frozenset(subscriptions.by_id(self.engine.context.store))
        return self._all_paused(now)

    def _all_paused(self, now: datetime) -> datetime | None:
        ends = [self._hook_pause(hook_id, now) for hook_id in self._live]
        if not ends or None in ends:
            return None
        return min(e for e in ends if e is not None)

    def _hook_pause(self, hook_id: str, now: datetime) -> datetime | None:
        pause = self._paused.get(hook_id)
        return None if pause is None else pause.until(now)

    def _pause(self, hook: WebhookRecord) -> None:
        """Put off the deliveries to ``hook`` for as long as one waits after a failure."""
        pause = Pause.first_backoff(self.engine.clock.now(), self.outbox)
        self._paused[hook.id] = pause
        self._log.warning(
            "webhook_paused", webhook=hook.id, url=hook.url, until=pause.ends.isoformat()
        )

    def _send(
        self, row: OutboxMail, hook: WebhookRecord | None, token: str, report: WebhookReport
    ) -> None:
        msg_id = str(row.body["message_id"])
        try:
            if hook is None or hook.removed_at is not None:
                raise WebhookFailure("the subscription was removed", permanent=True)
            body = orjson.dumps(row.body["payload"])
            stamp = int(self.engine.clock.now().timestamp())
            signed = headers(hook.secret, msg_id, stamp, body)
            status = post(hook.url, body, signed, self.settings.timeout_s, self.settings)
        except WebhookFailure as err:
            retried, dead = self.outbox.failed([row], token, err.text, permanent=err.permanent)
            report.retried += retried
            report.dead += dead
            report.errors.append(err.text)
            self._log.warning(
                "webhook_failed", delivery=row.id, webhook_id=msg_id, error=err.text, dead=dead
            )
            if err.unreachable and hook is not None:
                self._pause(hook)
            return
        report.sent += self.outbox.sent([Accepted((row,), msg_id, f"HTTP {status}")], token)
        self._log.info("webhook_sent", delivery=row.id, webhook_id=msg_id, status=status)
