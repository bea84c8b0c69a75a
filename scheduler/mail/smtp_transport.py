"""SMTP sessions through the standard library's :mod:`smtplib`.

``smtp://host[:port]`` (25 by default) speaks plain SMTP, upgraded with STARTTLS when
``starttls`` is set (a server that does not offer it is refused); ``smtps://host[:port]``
(465 by default) is TLS from the first byte. TLS verifies the server's certificate
and name against the system's trust store, or against ``ca_file`` where one is set.
The user name comes from the settings, the password from the environment or a file.
Every failure becomes a :class:`SmtpFailure` that says whether it is permanent (a 5xx
answer) and whether the session is still usable.
"""

from __future__ import annotations

import smtplib
import ssl
from types import TracebackType
from urllib.parse import urlsplit

from casework.workflow.errors import MailFailure
from casework.workflow.mail.settings import MailSettings


class SmtpFailure(MailFailure):
    """A sending failed: the server's answer (or the network's), and what it means.

    ``permanent``: a 5xx answer, retrying cannot help. ``broken``: the session cannot be
    used any more and a new connection is needed.
    """

    def __init__(self, text: str, *, permanent: bool, broken: bool) -> None:
        super().__init__(text)
        self.text = text
        self.permanent = permanent
        self.broken = broken


def _answer(code: int, message: bytes | str) -> str:
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    return f"{code} {' '.join(text.split())}"


def failure(err: Exception) -> SmtpFailure:
    """What an exception raised while talking to the server means for the mail."""
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        answers = {addr: _answer(code, msg) for addr, (code, msg) in err.recipients.items()}
        text = "recipients refused: " + "; ".join(f"{a}: {t}" for a, t in answers.items())
        codes = [code for code, _ in err.recipients.values()]
        return SmtpFailure(text, permanent=all(c >= 500 for c in codes), broken=False)
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return SmtpFailure(
            f"authentication failed: {_answer(err.smtp_code, err.smtp_error)}",
            permanent=False,
            broken=True,
        )
    if isinstance(err, smtplib.SMTPConnectError | smtplib.SMTPHeloError):
        return SmtpFailure(
            f"server refused the session: {_answer(err.smtp_code, err.smtp_error)}",
            permanent=False,
            broken=True,
        )
    if isinstance(err, smtplib.SMTPResponseException):
        code = err.smtp_code
        return SmtpFailure(_answer(code, err.smtp_error), permanent=code >= 500, broken=code == 421)
    if isinstance(err, smtplib.SMTPNotSupportedError):
        return SmtpFailure(
            f"server lacks a required extension: {err}", permanent=False, broken=True
        )
    if isinstance(err, smtplib.SMTPServerDisconnected):
        return SmtpFailure(f"server disconnected: {err}", permanent=False, broken=True)
    if isinstance(err, OSError):
        return SmtpFailure(f"cannot reach the server: {err}", permanent=False, broken=True)
    return SmtpFailure(f"{type(err).__name__}: {err}", permanent=False, broken=True)


class SmtpSession:
    """One open connection; sends messages until closed."""

    def __init__(self, client: smtplib.SMTP, sender: str) -> None:
        self._client = client
        self._sender = sender
        self.sent = 0

    def send(self, message: bytes, to: tuple[str, ...]) -> dict[str, str]:
        """Send ``message`` (CRLF line ends) to ``to``; recipients refused while others were
        accepted."""
        try:
            refused = self._client.sendmail(self._sender, list(to), message)
        except (smtplib.SMTPException, OSError) as err:
            raise failure(err) from err
        self.sent += 1
        return {addr: _answer(code, msg) for addr, (code, msg) in refused.items()}

    def close(self) -> None:
        """Say QUIT if the server still listens, and close the socket."""
        try:
            self._client.quit()
        except (smtplib.SMTPException, OSError):
            self._client.close()

    def __enter__(self) -> SmtpSession:
        return self

    def __exit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        self.close()


class SmtpTransport:
    """Opens SMTP sessions as the mail settings say."""

    def __init__(self, settings: MailSettings, *, tls: ssl.SSLContext | None = None) -> None:
        parts = urlsplit(settings.url)
        self.settings = settings
        self.secure = parts.scheme == "smtps"
        self.host = parts.hostname or "localhost"
        self.port = parts.port or (465 if self.secure else 25)
        self.username = settings.username or parts.username
        self._tls = tls

    def _context(self) -> ssl.SSLContext:
        return self._tls or ssl.create_default_context(cafile=self.settings.ca_file)

    def open(self) -> SmtpSession:
        """Connect, say EHLO, upgrade and log in as configured; :class:`SmtpFailure` if not."""
        timeout = self.settings.timeout_s
        client: smtplib.SMTP | None = None
        try:
            if self.secure:
                client = smtplib.SMTP_SSL(
                    self.host, self.port, timeout=timeout, context=self._context()
                )
            else:
                client = smtplib.SMTP(self.host, self.port, timeout=timeout)
            client.ehlo()
            if self.settings.starttls:
                if not client.has_extn("starttls"):
                    raise smtplib.SMTPNotSupportedError("STARTTLS is required but not offered")
                client.starttls(context=self._context())
                client.ehlo()
            if self.username:
                password = self.settings.password()
                if password is None:
                    raise smtplib.SMTPNotSupportedError(
                        f"user {self.username} has no password: set ${self.settings.password_env}"
                        " or mail.password_file"
                    )
                client.login(self.username, password)
        except (smtplib.SMTPException, OSError) as err:
            if client is not None:
                client.close()
            raise failure(err) from err
        return SmtpSession(client, self.settings.sender_address)
