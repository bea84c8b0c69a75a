"""A local SMTP server that keeps what it receives: for the demo and the benchmark.

It is aiosmtpd on a loopback port chosen by the operating system. Received mails are
parsed into :class:`~email.message.EmailMessage` objects with their envelope.
"""

from __future__ import annotations

import email
import socket
import threading
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from types import TracebackType
from typing import Any

from aiosmtpd.controller import Controller


@dataclass(frozen=True)
class Received:
    """A mail as the sink got it: envelope sender and recipients, and the message."""

    sender: str
    recipients: tuple[str, ...]
    message: EmailMessage


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on just now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _Keeper:
    def __init__(self, sink: SmtpSink) -> None:
        self.sink = sink

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=policy.default)
        received = Received(envelope.mail_from, tuple(envelope.rcpt_tos), message)
        with self.sink.lock:
            self.sink.received.append(received)
        return "250 2.0.0 OK"


class SmtpSink:
    """An SMTP server on ``127.0.0.1:port`` collecting mails in :attr:`received`."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[Received] = []
        self.lock = threading.Lock()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:port``."""
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> SmtpSink:
        """Listen (returns when the server answers); again after :meth:`stop` too."""
        self._controller = Controller(_Keeper(self), hostname="127.0.0.1", port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        """Stop listening; what was received is kept."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.stop()
