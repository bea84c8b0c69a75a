"""The display zone: ``--tz``, else ``CASEWORK_TZ``, else ``[display] timezone``, else
the system's own zone."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.workflow.errors import InvalidInput

ENVIRONMENT = "CASEWORK_TZ"


@dataclass(frozen=True)
class DisplayZone:
    """A zone people read times in, and where the choice came from."""

    zone: tzinfo
    source: str
    """``--tz``, ``$CASEWORK_TZ``, ``[display] timezone`` or ``system``."""

    @property
    def name(self) -> str:
        """The zone's IANA name (``Asia/Shanghai``), or its offset when it has none."""
        return zone_name(self.zone)


UTC_ZONE = DisplayZone(UTC, "UTC")
"""Times as stored: what JSON and logs use."""


def zone_name(zone: tzinfo) -> str:
    """``Asia/Shanghai``, ``UTC``, or ``+08:00`` for a zone known only by its offset."""
    key = getattr(zone, "key", None)
    if isinstance(key, str):
        return key
    if zone is UTC:
        return "UTC"
    return offset_text(datetime.now(zone))


def offset_text(moment: datetime) -> str:
    """``+08:00`` (``UTC`` for no offset) of an aware time."""
    offset = moment.utcoffset()
    if not offset:
        return "UTC"
    minutes = int(offset.total_seconds()) // 60
    sign = "+" if minutes >= 0 else "-"
    return f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def zone_named(name: str, what: str) -> ZoneInfo:
    """The IANA zone ``name``; an unknown one (or one longer than any zone's name) is
    :class:`InvalidInput` naming ``what``."""
    try:
        if len(name) > ZONE_NAME_CHARS:
            raise ValueError(name)
        return ZoneInfo(name.strip())
    except (ZoneInfoNotFoundError, ValueError, OSError):
        shown = name if len(name) <= ZONE_NAME_CHARS else f"{name[:20]}... ({len(name)} chars)"
        raise InvalidInput(
            f"{what}: unknown time zone {shown!r} (an IANA name such as Asia/Shanghai or UTC)",
            field="tz",
        ) from None


ZONE_NAME_CHARS = 64
"""No IANA zone's name is longer (the longest has 32 characters)."""


def system_zone() -> tzinfo:
    """This machine's zone: ``$TZ``, else what ``/etc/localtime`` names, else the
    current offset; UTC when none of them says."""
    for name in (os.environ.get("TZ", "").lstrip(":"), _localtime_name()):
        if name:
            try:
                return ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
    return datetime.now().astimezone().tzinfo or UTC


def _localtime_name() -> str:
    try:
        target = str(Path("/etc/localtime").resolve())
    except OSError:
        return ""
    _, found, name = target.partition("zoneinfo/")
    return name if found else ""


def choose_zone(option: str | None, configured: str | None) -> DisplayZone:
    """The display zone from the ``--tz`` option, the environment, the settings or the
    system, in that order."""
    if option:
        return DisplayZone(zone_named(option, "--tz"), "--tz")
    environment = os.environ.get(ENVIRONMENT, "").strip()
    if environment:
        return DisplayZone(zone_named(environment, f"${ENVIRONMENT}"), f"${ENVIRONMENT}")
    if configured:
        return DisplayZone(zone_named(configured, "[display] timezone"), "[display] timezone")
    return DisplayZone(system_zone(), "system")
