"""Delivering webhooks: claim due deliveries, ``POST`` each signed, record the answer.

A delivery is marked sent only after its receiver answered 2xx; any other answer, a
timeout or a refused connection retries it with backoff until its attempts run out,
then it is a dead letter carrying the last answer. A crash between the answer and the
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
from casework.scheduler.reports import RunReport
from casework.workflow.logs import library_logger
from casework.workflow.outbox.mail import Accepted, Outbox, OutboxMail, WebhookRecord
from casework.workflow.webhooks import targets
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
    errors: list[str] = field(default_factory=list)


class WebhookFailure(Exception):
    """A receiver did not take a delivery; ``permanent`` when retrying cannot help."""

    def __init__(self, text: str, *, permanent: bool = False) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent


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
        raise WebhookFailure(answer_text(f"cannot resolve {host}: {err}")) from None
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
            if budget.expired:
                raise WebhookFailure(f"timed out: no whole answer within {timeout_s:g} s") from None
            raise WebhookFailure(answer_text(f"{type(err).__name__}: {err}")) from None
        finally:
            connection.close()
    if budget.expired:  # what came was cut short: the receiver cannot have meant it
        raise WebhookFailure(f"timed out: no whole answer within {timeout_s:g} s")
    if 200 <= status < 300:
        return status
    raise WebhookFailure(f"HTTP {status}" + (f": {text}" if text else ""))


class WebhookDeliverer:
    """Sends the webhook deliveries of one engine's outbox."""

    def __init__(self, engine: EngineApi, *, batch: int = 50, logger: Any = None) -> None:
        self.engine = engine
        self.outbox = Outbox(engine.context, kind="webhook")
        self.settings = engine.settings.webhooks
        self.batch = batch
        self._log = logger if logger is not None else library_logger()

    def deliver_due(self, due_by: datetime | None = None) -> WebhookReport:
        """Try every delivery due by ``due_by`` (default: now) once; what happened."""
        due_by = due_by or self.engine.clock.now()
        token = secrets.token_hex(16)
        report = WebhookReport()
        while True:
            claim = self.outbox.claim(token, limit=self.batch, due_by=due_by)
            if not claim.mails:
                return report
            hooks = {
                h.id: h for h in self.engine.context.store.webhooks.subscriptions(removed=True)
            }
            budget = time.monotonic() + self.settings.lease_s / 2
            for index, row in enumerate(claim.mails):
                if time.monotonic() > budget:  # give the rest back before the lease lapses
                    self.outbox.release(claim.mails[index:], token)
                    return report
                self._send(row, hooks.get(str(row.body.get("webhook"))), token, report)

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
            return
        report.sent += self.outbox.sent([Accepted((row,), msg_id, f"HTTP {status}")], token)
        self._log.info("webhook_sent", delivery=row.id, webhook_id=msg_id, status=status)
