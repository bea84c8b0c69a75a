"""Mail settings: the ``[mail]`` table of the configuration, checked at load.

::

    [mail]
    url = "smtp://mail.example.com:587"   # smtp:// or smtps://; never a password in it
    starttls = true                       # smtp:// only: upgrade, and refuse a server without it
    username = "casework"                 # password from $CASEWORK_SMTP_PASSWORD ...
    password_env = "CASEWORK_SMTP_PASSWORD"
    password_file = "/run/secrets/smtp"   # ... or the first line of this file
    ca_file = "/etc/ssl/private-ca.pem"   # trust this CA for TLS (default: the system's)
    sender = "Casework <casework@example.com>"
    timeout_s = 30
    max_attempts = 8                      # then a temporary failure becomes a dead letter
    backoff_s = 60                        # doubled each attempt, with jitter ...
    max_backoff_s = 3600                  # ... up to this
    lease_s = 300                         # a claim older than this is taken over
    per_connection = 100                  # mails sent over one SMTP session
    language = "en"                       # or "zh"; per branch below
    timezone = "Asia/Shanghai"            # times in mails
    agent_domain = "example.com"          # owner "li.na" -> li.na@example.com
    max_age_s = 3600                      # older news (after downtime) goes in one digest
    templates = "mail-templates"          # a folder overriding the shipped templates
    [mail.languages]
    Guangzhou = "zh"
    [mail.agents]
    "wang.wei" = "wei.wang@example.com"
    [mail.quiet_hours]                    # hold these levels outside the calendar's hours
    warning = "office"                    # a calendar of [sla.calendars]
    1 = "office"

Every address is checked when the file is loaded, and every template is compiled and
rendered once with sample data, so a mistake stops the load with the key that holds it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from email.headerregistry import Address
from email.utils import parseaddr
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines.clocks import level_key
from casework.workflow.errors import ConfigError
from casework.workflow.setting_values import positive_number, positive_whole

LANGUAGES = ("en", "zh")
"""Languages whose templates ship with casework."""


@dataclass(frozen=True)
class MailSettings:
    """How escalation mails are written and delivered. Immutable."""

    url: str = "smtp://localhost:25"
    starttls: bool = False
    username: str | None = None
    password_env: str = "CASEWORK_SMTP_PASSWORD"  # noqa: S105 - the variable's name
    password_file: str | None = None
    ca_file: str | None = None
    sender: str = "casework <casework@localhost>"
    timeout_s: float = 30.0
    max_attempts: int = 8
    backoff_s: float = 60.0
    max_backoff_s: float = 3600.0
    lease_s: float = 300.0
    per_connection: int = 100
    language: str = "en"
    timezone: str = "UTC"
    agent_domain: str | None = None
    templates: str | None = None
    languages: Mapping[str, str] = field(default_factory=dict)
    agents: Mapping[str, str] = field(default_factory=dict)
    quiet_hours: Mapping[str, str] = field(default_factory=dict)
    max_age_s: float = 3600.0
    """A mail that fell due longer ago than this when it is sent goes in a digest."""
    console_url: str | None = None
    """``[console] base_url``: mails link to ``<console_url>/cases/<id>`` (none without)."""

    @property
    def sender_address(self) -> str:
        """The bare address of :attr:`sender`."""
        return parseaddr(self.sender)[1]

    @property
    def message_id_domain(self) -> str:
        """The domain of generated ``Message-ID`` headers: the sender's."""
        return self.sender_address.rpartition("@")[2]

    def language_for(self, branch: str | None) -> str:
        """The language of mails about a case of ``branch``."""
        return self.languages.get(branch or "", self.language)

    def agent_address(self, agent: str) -> str | None:
        """The mail address of an agent id, from ``mail.agents`` or ``mail.agent_domain``.

        Only configuration gives an address: an id that looks like one (``x@evil.example``)
        is not passed through, so case data can never choose where a mail goes.
        """
        mapped = self.agents.get(agent)
        if mapped is not None:
            return mapped
        if self.agent_domain is not None and "@" not in agent:
            address = f"{agent}@{self.agent_domain}"
            return address if is_address(address) else None
        return None

    def agent_problem(self, agent: str) -> str | None:
        """Why ``agent`` has no mail address (``None`` if it has one): what is missing."""
        if self.agent_address(agent) is not None:
            return None
        if "@" in agent:
            return (
                f"agent {agent!r} is not an agent id: mail goes only to addresses the "
                "configuration gives (mail.agents, mail.agent_domain, the ladder)"
            )
        entry = f'add "{agent}" = "<address>" to [mail.agents]'
        if self.agent_domain is None:
            return f"no mail address for agent {agent!r}: {entry}, or set mail.agent_domain"
        return (
            f"no mail address for agent {agent!r}: mail.agent_domain gives addresses to "
            f"agent ids of plain ASCII letters, digits and . _ - only; {entry}"
        )

    def quiet_calendar(self, level: int) -> str | None:
        """The calendar outside whose hours mails of ``level`` (0: warning) are held."""
        return self.quiet_hours.get(level_key(level))

    def password(self) -> str | None:
        """The SMTP password from the environment or the password file, if either has one."""
        value = os.environ.get(self.password_env)
        if value:
            return value
        if self.password_file:
            try:
                text = Path(self.password_file).read_text(encoding="utf-8")
            except OSError as err:
                raise ConfigError(
                    f"mail.password_file: cannot read {self.password_file}: {err.strerror}"
                ) from None
            return text.splitlines()[0] if text else None
        return None


def is_address(text: str) -> bool:
    """Whether ``text`` is one plain ASCII mail address (``local@domain``)."""
    if not text.isascii() or any(c.isspace() or not c.isprintable() for c in text):
        return False
    try:
        address = Address(addr_spec=text)
    except Exception:  # the header parser raises several kinds for bad input
        return False
    return bool(address.username) and bool(address.domain) and address.addr_spec == text


def check_address(text: Any, where: str) -> str:
    """``text`` if it is a mail address, else a :class:`ConfigError` naming ``where``."""
    if not isinstance(text, str) or not is_address(text):
        raise ConfigError(f"{where}: not a valid mail address: {text!r}")
    return text


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value or any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where} must be a non-empty single-line string, got {value!r}")
    return value


def _seconds_up_to(most: float) -> Any:
    """A parser of a positive number of seconds up to ``most``."""
    return lambda value, where: positive_number(value, where, most)


def _whole_up_to(most: int) -> Any:
    """A parser of a whole number from 1 to ``most``."""
    return lambda value, where: positive_whole(value, where, most)


DAY_S = 86_400.0


def _flag(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where} must be true or false, got {value!r}")
    return value


def parse_url(value: Any, where: str) -> str:
    """An SMTP URL after checking it: smtp:// or smtps://, a host, no password."""
    text = _text(value, where)
    parts = urlsplit(text)
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ConfigError(f"{where} must be smtp://host[:port] or smtps://host[:port]")
    if parts.password is not None:
        raise ConfigError(
            f"{where}: no password in the URL; use mail.password_env or password_file"
        )
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError(f"{where}: bad port in {text!r}") from None
    return text


def _sender(value: Any, where: str) -> str:
    text = _text(value, where)
    check_address(parseaddr(text)[1], where)
    return text


def _language(value: Any, where: str) -> str:
    if value not in LANGUAGES:
        raise ConfigError(f"{where} must be one of {', '.join(LANGUAGES)}, got {value!r}")
    return str(value)


def time_zone(value: Any, where: str) -> str:
    """``value`` if it names a time zone this machine knows; else a ConfigError at ``where``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ConfigError(f"{where}: unknown time zone {value!r}") from None
    return str(value)


def _zone(value: Any, where: str) -> str:
    return time_zone(_text(value, where), where)


def config_table(value: Any, where: str) -> Mapping[str, Any]:
    """``value`` if it is a table; else a ConfigError at ``where``."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} must be a table")
    return value


def _languages(value: Any, where: str) -> dict[str, str]:
    return {k: _language(v, f"{where}.{k}") for k, v in config_table(value, where).items()}


def _agents(value: Any, where: str) -> dict[str, str]:
    return {k: check_address(v, f"{where}.{k}") for k, v in config_table(value, where).items()}


def _quiet(value: Any, where: str) -> dict[str, str]:
    table = config_table(value, where)
    for key in table:
        if key != "warning" and not key.isdigit():
            raise ConfigError(f"{where}.{key}: a level is 'warning' or a ladder level number")
    return {k: _text(v, f"{where}.{k}") for k, v in table.items()}


def _domain(value: Any, where: str) -> str:
    text = _text(value, where)
    check_address(f"agent@{text}", where)
    return text


_KEYS: dict[str, Any] = {
    "url": parse_url,
    "starttls": _flag,
    "username": _text,
    "password_env": _text,
    "password_file": _text,
    "ca_file": _text,
    "sender": _sender,
    "timeout_s": _seconds_up_to(3600),
    "max_attempts": _whole_up_to(1000),
    "backoff_s": _seconds_up_to(7 * DAY_S),
    "max_backoff_s": _seconds_up_to(30 * DAY_S),
    "lease_s": _seconds_up_to(DAY_S),
    "per_connection": _whole_up_to(100_000),
    "language": _language,
    "timezone": _zone,
    "agent_domain": _domain,
    "templates": _text,
    "languages": _languages,
    "agents": _agents,
    "quiet_hours": _quiet,
    "max_age_s": _seconds_up_to(365 * DAY_S),
}


def mail_settings(body: Any, where: str, base: Path | None = None) -> MailSettings:
    """The ``[mail]`` table as settings; ``where`` prefixes every error (file name)."""
    table = config_table(body, f"{where}: [mail]")
    settings = MailSettings()
    for key, value in table.items():
        parse = _KEYS.get(key)
        if parse is None:
            raise ConfigError(f"{where}: unknown key mail.{key}; known: {', '.join(_KEYS)}")
        settings = replace(settings, **{key: parse(value, f"{where}: mail.{key}")})
    if base is not None:
        paths: dict[str, Any] = {
            key: str(base / getattr(settings, key))
            for key in ("templates", "ca_file", "password_file")
            if getattr(settings, key) is not None
        }
        settings = replace(settings, **paths)
    if settings.ca_file is not None and not Path(settings.ca_file).is_file():
        raise ConfigError(f"{where}: mail.ca_file: no such file {settings.ca_file}")
    if settings.starttls and urlsplit(settings.url).scheme == "smtps":
        raise ConfigError(f"{where}: mail.starttls is for smtp:// (smtps:// is TLS from the start)")
    return settings
