"""The ``[reports.daily]`` table: the daily report of returns, exchanges and complaints
(seed 003: 退换货及投诉日报) mailed to each branch and to headquarters.

::

    [reports.daily]
    enabled = true
    at = "10:00"                          # local time of the branch's zone
    hq = ["hq-service@example.com"]       # headquarters: per branch, company total
    [reports.daily.recipients]            # each branch: per store
    north = ["north-service@example.com"]
    [reports.daily.timezones]             # a branch's own zone (default: [display] timezone)
    west = "Asia/Urumqi"

Addresses are checked as ``[mail]``'s are; a mistake stops the load with its key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import time
from typing import Any
from zoneinfo import ZoneInfo

from casework.workflow.errors import ConfigError
from casework.workflow.mail.settings import check_address, config_table, time_zone

HQ = "hq"
"""The scope of headquarters' report in a dedupe key and the report's JSON."""


@dataclass(frozen=True)
class DailySettings:
    """When and to whom the daily report goes. Immutable; off by default."""

    enabled: bool = False
    at: time = time(10, 0)
    hq: tuple[str, ...] = ()
    recipients: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    timezones: Mapping[str, str] = field(default_factory=dict)

    def zone_for(self, branch: str | None, default: str | None) -> ZoneInfo:
        """The zone a branch's day is cut in: its own, else ``default`` (``[display]
        timezone``), else UTC; headquarters (``None``) reads ``default``."""
        name = self.timezones.get(branch or "") or default or "UTC"
        return ZoneInfo(name)


@dataclass(frozen=True)
class ReportSettings:
    """The ``[reports]`` section."""

    daily: DailySettings = field(default_factory=DailySettings)


def _addresses(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where} must be a non-empty list of mail addresses")
    return tuple(check_address(v, f"{where}[{i}]") for i, v in enumerate(value))


def _at(value: Any, where: str) -> time:
    try:
        parsed = time.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is not None or len(value) != 5:
        raise ConfigError(f'{where} must be a local time "HH:MM", got {value!r}')
    return parsed


_DAILY_KEYS = ("enabled", "at", "hq", "recipients", "timezones")


def report_settings(body: Any, source: str) -> ReportSettings:
    """The ``[reports]`` section; every error names ``source`` and the key."""
    table = config_table(body, f"{source}: [reports]")
    unknown = set(table) - {"daily"}
    if unknown:
        raise ConfigError(f"{source}: unknown key reports.{sorted(unknown)[0]}; known: daily")
    daily = config_table(table.get("daily", {}), f"{source}: [reports.daily]")
    where = f"{source}: reports.daily"
    unknown = set(daily) - set(_DAILY_KEYS)
    if unknown:
        raise ConfigError(
            f"{where}: unknown key {sorted(unknown)[0]}; known: {', '.join(_DAILY_KEYS)}"
        )
    enabled = daily.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ConfigError(f"{where}.enabled must be true or false, got {enabled!r}")
    recipients = {
        str(branch): _addresses(people, f"{where}.recipients.{branch}")
        for branch, people in config_table(
            daily.get("recipients", {}), f"{where}.recipients"
        ).items()
    }
    settings = DailySettings(
        enabled=enabled,
        at=_at(daily.get("at", "10:00"), f"{where}.at"),
        hq=_addresses(daily["hq"], f"{where}.hq") if "hq" in daily else (),
        recipients=recipients,
        timezones={
            str(branch): time_zone(zone, f"{where}.timezones.{branch}")
            for branch, zone in config_table(
                daily.get("timezones", {}), f"{where}.timezones"
            ).items()
        },
    )
    if settings.enabled and not settings.hq and not settings.recipients:
        raise ConfigError(f"{where}: enabled, but neither hq nor recipients says who reads it")
    return ReportSettings(settings)
