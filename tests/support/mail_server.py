"""A real SMTP server on loopback (aiosmtpd) whose answers a test can script."""

from __future__ import annotations

import asyncio
import email
import shutil
import ssl
import subprocess
import threading
from collections import Counter
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from casework.scheduler.mail.smtp_sink import free_port
from tests.support import wait_until


class Script:
    """What the server answers: queued DATA answers, refused recipients, a delay."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[tuple[tuple[str, ...], EmailMessage, bytes]] = []
        self.data_answers: list[str] = []
        self.refused: dict[str, str] = {}
        self.delay_s = 0.0

    async def handle_RCPT(
        self, _server: Any, _session: Any, envelope: Any, address: str, _options: Any
    ) -> str:
        answer = self.refused.get(address)
        if answer is not None:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        with self.lock:
            if self.data_answers:
                return self.data_answers.pop(0)
            raw = envelope.original_content
            message = email.message_from_bytes(raw, policy=policy.default)
            self.received.append((tuple(envelope.rcpt_tos), message, raw))
        return "250 2.0.0 queued"

    def message_ids(self) -> Counter[str]:
        """How often each Message-ID arrived."""
        with self.lock:
            return Counter(str(m["Message-ID"]) for _, m, _ in self.received)

    def wait_for(self, count: int, timeout_s: float = 60.0) -> bool:
        """Whether ``count`` mails arrived within ``timeout_s`` (a bound on a hang, not
        a measure of speed)."""
        try:
            wait_until(lambda: self._arrived() >= count, timeout=timeout_s, what="mails")
        except AssertionError:
            return False
        return True

    def _arrived(self) -> int:
        with self.lock:
            return len(self.received)


class _Passwords:
    def __init__(self, users: dict[str, str]) -> None:
        self.users = users

    def __call__(
        self, _server: Any, _session: Any, _envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self.users.get(data.login.decode()) == data.password.decode()
        )
        return AuthResult(success=ok, handled=False)


class TestServer:
    """An aiosmtpd server on a fixed loopback port that can be stopped and started again."""

    __test__ = False

    def __init__(
        self,
        users: dict[str, str] | None = None,
        *,
        tls: ssl.SSLContext | None = None,
        implicit_tls: bool = False,
    ) -> None:
        self.port = free_port()
        self.script = Script()
        self.users = users
        self.tls = tls
        self.implicit_tls = implicit_tls
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """``smtp://127.0.0.1:port``, or ``smtps://localhost:port`` with implicit TLS."""
        if self.implicit_tls:
            return f"smtps://localhost:{self.port}"
        return f"smtp://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Listen on the port."""
        extra: dict[str, Any] = {}
        if self.users is not None:
            extra = {"authenticator": _Passwords(self.users), "auth_require_tls": False}
        if self.tls is not None and self.implicit_tls:
            extra["ssl_context"] = self.tls
        elif self.tls is not None:
            extra.update(tls_context=self.tls, require_starttls=True)
        self._controller = Controller(self.script, hostname="127.0.0.1", port=self.port, **extra)
        self._controller.start()

    def stop(self) -> None:
        """Stop listening (connections are refused until :meth:`start`)."""
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def self_signed(folder: Path) -> tuple[Path, ssl.SSLContext] | None:
    """A certificate for localhost and 127.0.0.1 made with openssl, and a server context."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
         "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return cert, context
