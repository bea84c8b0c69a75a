"""Customer notification settings: the ``[notify]`` table of the configuration.

::

    [notify]
    channel = "sms"                  # email | sms | none: for a case without a notify
                                     # attribute (default none: nothing is sent)
    language = "zh"                  # zh | en, for a case without a language attribute
    quiet_hours = "21:00-08:00"      # held until they end, in the branch's zone
    timezone = "Asia/Shanghai"       # the zone of windows, dates and quiet hours
    timezones = { north = "Asia/Urumqi" }   # a branch's own zone
    max_attempts = 8                 # then a dead letter, as for mail
    backoff_s = 60
    max_backoff_s = 3600
    lease_s = 120

    [notify.sms]
    url = "https://sms.example.com/send"   # the provider's endpoint (a signed JSON POST)
    secret_env = "CASEWORK_SMS_SECRET"     # the variable that holds the shared secret
    timeout_s = 10

    [survey]
    secret_env = "CASEWORK_SURVEY_SECRET"  # signs the customers' links (or secret = "...")
    previous = ["old secret"]              # still accepted after a rotation
    valid_days = 14
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import time
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from casework.workflow.errors import ConfigError
from casework.workflow.mail.settings import (
    LANGUAGES,
    config_table,
    time_zone,
)
from casework.workflow.setting_values import positive_number, positive_whole

CHANNELS = ("email", "sms", "none")
"""How a customer may be told: by mail, by text message, or not at all."""
MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class SmsSettings:
    """Where text messages go: an HTTP provider's endpoint and the shared secret."""

    url: str | None = None
    secret: str | None = None
    timeout_s: float = 10.0


@dataclass(frozen=True)
class NotifySettings:
    """How customers are told of their cases. Immutable."""

    channel: str = "none"
    language: str = "zh"
    quiet_hours: tuple[time, time] | None = None
    timezone: str = "UTC"
    timezones: Mapping[str, str] = field(default_factory=dict)
    max_attempts: int = 8
    backoff_s: float = 60.0
    max_backoff_s: float = 3600.0
    lease_s: float = 120.0
    sms: SmsSettings = field(default_factory=SmsSettings)
    survey_secrets: tuple[str, ...] = ()
    """The first signs new links; all of them verify (rotation)."""
    survey_days: int = 14
    zone_given: bool = False
    """Whether ``timezone`` was configured (else [display] timezone applies)."""

    def zone(self, branch: str | None) -> ZoneInfo:
        """The zone a customer of ``branch`` reads times in."""
        return ZoneInfo(self.timezones.get(branch or "", self.timezone))


def _one_line(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
        raise ConfigError(f"{where} must be a non-empty single-line string")
    return value.strip()


def _zone(value: Any, where: str) -> str:
    return time_zone(_one_line(value, where), where)


def _clock(text: str, where: str) -> time:
    hours, _, minutes = text.strip().partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ConfigError(f"{where} must read HH:MM-HH:MM, e.g. 21:00-08:00")
    if not (0 <= int(hours) <= 23 and 0 <= int(minutes) <= 59):
        raise ConfigError(f"{where} must read HH:MM-HH:MM, e.g. 21:00-08:00")
    return time(int(hours), int(minutes))


def _quiet(value: Any, where: str) -> tuple[time, time]:
    start, dash, end = _one_line(value, where).partition("-")
    if not dash:
        raise ConfigError(f"{where} must read HH:MM-HH:MM, e.g. 21:00-08:00")
    begin, until = _clock(start, where), _clock(end, where)
    if begin == until:
        raise ConfigError(f"{where}: quiet hours must not begin when they end")
    return begin, until


def _secret(table: Mapping[str, Any], where: str) -> str | None:
    if "secret" in table:
        value = _one_line(table["secret"], f"{where}.secret")
    elif "secret_env" in table:
        name = _one_line(table["secret_env"], f"{where}.secret_env")
        value = os.environ.get(name, "").strip()
        if not value:
            raise ConfigError(f"{where}.secret_env: the variable {name} is not set")
    else:
        return None
    if len(value) < MIN_SECRET_CHARS:
        raise ConfigError(f"{where}: a secret needs at least {MIN_SECRET_CHARS} characters")
    return value


def _unknown(table: Mapping[str, Any], known: tuple[str, ...], where: str) -> None:
    for key in table:
        if key not in known:
            raise ConfigError(f"{where}: unknown key {key}; known: {', '.join(known)}")


def _sms(value: Any, where: str) -> SmsSettings:
    table = config_table(value, where)
    _unknown(table, ("url", "secret", "secret_env", "timeout_s"), where)
    url = None
    if "url" in table:
        url = _one_line(table["url"], f"{where}.url")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{where}.url must be an http:// or https:// address")
    timeout = table.get("timeout_s", 10.0)
    return SmsSettings(
        url=url,
        secret=_secret(table, where),
        timeout_s=positive_number(timeout, f"{where}.timeout_s", 300),
    )


NOTIFY_KEYS = (
    "channel", "language", "quiet_hours", "timezone", "timezones", "max_attempts",
    "backoff_s", "max_backoff_s", "lease_s", "sms",
)  # fmt: skip


def notify_settings(body: Any, where: str, current: NotifySettings) -> NotifySettings:
    """The ``[notify]`` table over ``current``; every error names ``where``."""
    table = config_table(body, f"{where}: [notify]")
    at = f"{where}: notify"
    _unknown(table, NOTIFY_KEYS, at)
    found: dict[str, Any] = {}
    if "channel" in table:
        if table["channel"] not in CHANNELS:
            raise ConfigError(f"{at}.channel must be one of {', '.join(CHANNELS)}")
        found["channel"] = table["channel"]
    if "language" in table:
        if table["language"] not in LANGUAGES:
            raise ConfigError(f"{at}.language must be one of {', '.join(LANGUAGES)}")
        found["language"] = table["language"]
    if "quiet_hours" in table:
        found["quiet_hours"] = _quiet(table["quiet_hours"], f"{at}.quiet_hours")
    if "timezone" in table:
        found["timezone"] = _zone(table["timezone"], f"{at}.timezone")
        found["zone_given"] = True
    if "timezones" in table:
        zones = config_table(table["timezones"], f"{at}.timezones")
        found["timezones"] = {k: _zone(v, f"{at}.timezones.{k}") for k, v in zones.items()}
    if "max_attempts" in table:
        found["max_attempts"] = positive_whole(table["max_attempts"], f"{at}.max_attempts", 1000)
    for key, most in (
        ("backoff_s", 7 * 86_400),
        ("max_backoff_s", 30 * 86_400),
        ("lease_s", 86_400),
    ):
        if key in table:
            found[key] = positive_number(table[key], f"{at}.{key}", most)
    if "sms" in table:
        found["sms"] = _sms(table["sms"], f"{at}.sms")
    return replace(current, **found)


def survey_settings(body: Any, where: str, current: NotifySettings) -> NotifySettings:
    """The ``[survey]`` table over ``current``: the link's secrets and how long it lasts."""
    table = config_table(body, f"{where}: [survey]")
    at = f"{where}: survey"
    _unknown(table, ("secret", "secret_env", "previous", "valid_days"), at)
    first = _secret(table, at)
    previous = table.get("previous", [])
    if not isinstance(previous, list):
        raise ConfigError(f"{at}.previous must be a list of secrets")
    older = [_one_line(v, f"{at}.previous[{i}]") for i, v in enumerate(previous)]
    secrets = tuple([first] if first else []) + tuple(older)
    days = positive_whole(table.get("valid_days", 14), f"{at}.valid_days", 366)
    return replace(current, survey_secrets=secrets, survey_days=days)
