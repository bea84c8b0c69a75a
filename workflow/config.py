"""Settings: intake choices and input limits, from built-in defaults or a TOML file.

A file may extend the channel and category lists and change the limits::

    [intake]
    channels = ["wechat"]          # added to the defaults
    categories = ["delivery_damage"]
    priorities = ["normal", "high", "urgent"]   # replaces the defaults

    [display]
    timezone = "Asia/Shanghai"     # times people read and type (default: the system's)
    language = "zh"                # reports' language (default: $LANG's, else English)

    [console]
    base_url = "https://casework.example.com"   # mails link to <base_url>/cases/<id>

    [limits]
    max_note_chars = 4000
    max_data_bytes = 16384
    future_skew_s = 120
    max_clock_skew_s = 300         # a host whose clock runs further ahead of the
                                   # database server's (PostgreSQL) writes nothing

    [sla]                          # the SLA policy; see README "SLA clocks"
    name = "standard"
    [sla.calendars.office]
    timezone = "Asia/Shanghai"
    mon = ["09:00-12:00", "13:00-18:00"]   # ... through sun
    holidays = "CN"                        # or a list of dates; closed/working lists too
    [sla.clocks.first_response]
    runs_in = ["received"]
    within_s = 86400
    calendar = "office"
    by_channel = { regulator = 14400 }
    [[sla.ladder]]
    level = 1
    name = "store supervisor"
    after_s = 0
    recipients = { "*" = ["supervisor@example.com"] }

Unknown sections or keys are refused with the file and key, so a typo never passes
silently. The ``[sla]`` table replaces the built-in policy as a whole.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from casework.machines.calendars import china_holidays
from casework.machines.partner_rules import PARTNER_RULES, PartnerRules
from casework.machines.sla import DEFAULT_DOCUMENT, PolicyError, SlaPolicy, policy_from_document
from casework.machines.warranty import WARRANTY_RULES, WarrantyRules
from casework.workflow.access.authority import Authority, authority
from casework.workflow.access.organisation import Organisation, organisation
from casework.workflow.daily_report_settings import ReportSettings, report_settings
from casework.workflow.errors import ConfigError
from casework.workflow.mail.settings import (
    MailSettings,
    check_address,
    mail_settings,
)
from casework.workflow.notify.settings import NotifySettings, notify_settings, survey_settings
from casework.workflow.partner_settings import partner_rules
from casework.workflow.setting_values import positive_whole
from casework.workflow.warranty_settings import warranty_rules
from casework.workflow.webhooks.settings import WebhookSettings, webhook_settings

HOLIDAY_YEARS = range(2020, 2041)
"""The years whose Chinese public holidays a ``holidays = "CN"`` calendar lists."""

DEFAULT_CHANNELS = ("store", "phone", "letter", "web", "regulator", "media")
DEFAULT_CATEGORIES = (
    "missed_appointment",
    "not_fixed_first_visit",
    "service_delayed",
    "unreasonable_charge",
    "non_standard_service",
    "slow_response",
    "policy_not_honoured",
    "product_quality",
    "other",
)
DEFAULT_PRIORITIES = ("normal", "high", "urgent")
SUMMARY_COLUMN_CHARS = 4000
"""What the ``summary`` column holds on every database: ``max_text_chars`` may not exceed it."""


@dataclass(frozen=True)
class Settings:
    """Everything configurable about intake and input limits. Immutable."""

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    priorities: tuple[str, ...] = DEFAULT_PRIORITIES
    default_machine: str = "complaint"
    max_note_chars: int = 4000
    max_text_chars: int = 4000
    max_data_bytes: int = 16_384
    max_attachment_bytes: int = 10 << 20
    repeat_window: timedelta | None = None
    """A complaint of the same customer about the same unit (the complaint machine: its
    serial number) within this is a repeat (``None``: the machine's own window, 90 days)."""
    repeat_escalates: bool = True
    """A repeat complaint that the fault was not fixed goes up a ladder level at once."""
    future_skew: timedelta = field(default=timedelta(minutes=2))
    max_clock_skew: timedelta = field(default=timedelta(minutes=5))
    """How far this host's clock may run ahead of the database server's (PostgreSQL)."""
    sla: Mapping[str, Any] | None = None
    """The ``[sla]`` table: the default machine's policy (``None``: the machine's own)."""
    machine_sla: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``[machines.NAME.sla]`` tables: policies replacing other machines' own."""
    mail: MailSettings = field(default_factory=MailSettings)
    webhooks: WebhookSettings = field(default_factory=WebhookSettings)
    notify: NotifySettings = field(default_factory=NotifySettings)
    """``[notify]`` and ``[survey]``: how customers are told (:mod:`casework.workflow.notify`)."""
    partners: PartnerRules = PARTNER_RULES
    warranty: WarrantyRules = WARRANTY_RULES
    """The three guarantees ``decide_remedy`` is checked against
    (:mod:`casework.machines.warranty`)."""
    """``[partners]``: how partners are rated (:mod:`casework.machines.partner_rules`)."""
    authority: Authority = field(default_factory=Authority)
    """``[authority]``: what each role may decide (:mod:`casework.workflow.access.authority`)."""
    organisation: Organisation = field(default_factory=Organisation)
    """``[organisation]``: stores in branches (:mod:`casework.workflow.access.organisation`)."""
    reports: ReportSettings = field(default_factory=ReportSettings)
    """``[reports.daily]``: the daily report's time and readers."""
    display_timezone: str | None = None
    """``[display] timezone``: the zone people read times in (``None``: the system's)."""
    display_language: str | None = None
    """``[display] language``: ``zh`` or ``en`` for reports (``None``: ``$LANG``'s)."""
    console_base_url: str | None = None
    """``[console] base_url``: where the console is served; mails link to its cases."""
    erase_after: timedelta | None = None
    """``[privacy] erase_after_days``: a customer whose cases have all rested this long is
    erased by the worker's daily run (``None``: never by itself)."""
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        if not 0 < self.max_text_chars <= SUMMARY_COLUMN_CHARS:
            raise ConfigError(
                f"{self.source}: limits.max_text_chars must be from 1 to "
                f"{SUMMARY_COLUMN_CHARS} (what the summary column holds on every database)"
            )


def load_settings(path: str | Path | None) -> Settings:
    """Settings from a TOML file, or the built-in defaults when ``path`` is ``None``."""
    if path is None:
        return Settings()
    from casework.workflow.files import read_text

    file = Path(path)
    text = read_text(file, "TOML", what="configuration", field="config", error=ConfigError)
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{file}: not valid TOML: {err}") from None
    return settings_from_mapping(document, str(file))


_WHOLE_SECTIONS: dict[str, Callable[[Any, str], Any]] = {
    "webhooks": webhook_settings,
    "partners": partner_rules,
    "authority": authority,
    "organisation": organisation,
    "reports": report_settings,
}
"""Sections read whole by their own module into the setting of the same name."""


def settings_from_mapping(document: Mapping[str, Any], source: str) -> Settings:
    """Settings from a parsed document; every error names ``source`` and the key."""
    settings = Settings(source=source)
    known: dict[str, Mapping[str, Applier]] = {
        "intake": _INTAKE,
        "limits": _LIMITS,
        "display": _DISPLAY,
        "privacy": _PRIVACY,
        "console": _CONSOLE,
    }
    for section, body in document.items():
        if section == "sla":
            settings = replace(settings, sla=_sla_document(body, source, "sla"))
            continue
        if section == "machines":
            settings = replace(settings, machine_sla=_machine_sla(body, source))
            continue
        if section == "mail":
            base = Path(source).parent if Path(source).is_file() else None
            settings = replace(settings, mail=mail_settings(body, source, base))
            continue
        whole = _WHOLE_SECTIONS.get(section)
        if whole is not None:
            settings = replace(settings, **{section: whole(body, source)})
            continue
        if section in ("notify", "survey"):
            parse = notify_settings if section == "notify" else survey_settings
            settings = replace(settings, notify=parse(body, source, settings.notify))
            continue
        if section == "warranty":
            rules, escalates = warranty_rules(body, source)
            settings = replace(settings, warranty=rules)
            if escalates is not None:
                settings = replace(settings, repeat_escalates=escalates)
            continue
        if section not in known:
            raise ConfigError(
                f"{source}: unknown section [{section}]; "
                "known: intake, limits, display, console, privacy, sla, machines, mail, webhooks, "
                "partners, warranty, authority, organisation, notify, survey, reports"
            )
        if not isinstance(body, Mapping):
            raise ConfigError(f"{source}: [{section}] must be a table")
        for key, value in body.items():
            apply = known[section].get(key)
            if apply is None:
                names = ", ".join(known[section])
                raise ConfigError(f"{source}: unknown key {section}.{key}; known: {names}")
            settings = apply(settings, value, f"{source}: {section}.{key}")
    mail_zone = (
        document.get("mail", {}).get("timezone")
        if isinstance(document.get("mail"), Mapping)
        else None
    )
    if settings.display_timezone and mail_zone is None:  # mails speak the display zone too
        settings = replace(
            settings, mail=replace(settings.mail, timezone=settings.display_timezone)
        )
    if settings.display_timezone and not settings.notify.zone_given:  # customers' zone too
        settings = replace(
            settings, notify=replace(settings.notify, timezone=settings.display_timezone)
        )
    if settings.console_base_url:  # mails link to the console's case pages
        settings = replace(
            settings, mail=replace(settings.mail, console_url=settings.console_base_url)
        )
    _check_policies(settings, source)
    _check_mail(settings, source)
    return settings


def configured_policies(settings: Settings) -> dict[str, tuple[str, Mapping[str, Any]]]:
    """The policy documents the configuration gives, by machine: (key, document)."""
    found = {name: (f"machines.{name}.sla", doc) for name, doc in settings.machine_sla.items()}
    if settings.sla is not None:
        found[settings.default_machine] = ("sla", settings.sla)
    return found


def _check_policies(settings: Settings, source: str) -> None:
    """Each configured policy against its machine's states and events, where the machine
    is installed (one registered by a host application is checked when it opens)."""
    from casework.workflow.catalog import installed_registry

    registry = installed_registry()
    for machine, (key, document) in configured_policies(settings).items():
        try:
            definition = registry.get(machine)
        except LookupError:
            continue
        check_policy(document, definition.states, definition.events, f"{source}: {key}")


def check_policy(
    document: Mapping[str, Any], states: Sequence[str], events: Sequence[str], where: str
) -> SlaPolicy:
    """The policy of ``document`` for a machine of ``states`` and ``events``, its ladder
    recipients mail addresses; a :class:`ConfigError` naming ``where`` and the key."""
    try:
        policy = policy_from_document(document, states, events)
    except PolicyError as err:
        raise ConfigError(f"{where}.{err.key}: {err.problem}") from None
    for index, rung in enumerate(document.get("ladder", [])):
        for branch, people in rung.get("recipients", {}).items():
            for n, person in enumerate(people):
                check_address(person, f"{where}.ladder[{index}].recipients.{branch}[{n}]")
    return policy


def _check_mail(settings: Settings, source: str) -> None:
    """Quiet hours name calendars of a configured policy; templates render."""
    calendars = {"24x7"}
    for _, document in configured_policies(settings).values():
        calendars |= set(document.get("calendars", {}))
    calendars |= set(DEFAULT_DOCUMENT.get("calendars", {}))
    for level, name in settings.mail.quiet_hours.items():
        if name not in calendars:
            known = ", ".join(sorted(calendars))
            raise ConfigError(
                f"{source}: mail.quiet_hours.{level}: no calendar {name!r} in [sla.calendars]; "
                f"known: {known}"
            )
    from casework.workflow.mail.render import MailWriter  # Jinja2 only when a file is checked

    MailWriter(settings.mail).check()


def _machine_sla(body: Any, source: str) -> dict[str, Mapping[str, Any]]:
    """The ``[machines]`` section: ``[machines.NAME.sla]`` per machine."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [machines] must be a table of machine names")
    found: dict[str, Mapping[str, Any]] = {}
    for name, table in body.items():
        if not isinstance(table, Mapping) or set(table) - {"sla"}:
            raise ConfigError(f"{source}: [machines.{name}] may hold only an sla table")
        if "sla" in table:
            found[name] = _sla_document(table["sla"], source, f"machines.{name}.sla")
    return found


def _sla_document(body: Any, source: str, key: str) -> dict[str, Any]:
    """An SLA table as a policy document: ``holidays = "CN"`` becomes explicit dates."""
    if not isinstance(body, Mapping):
        raise ConfigError(f"{source}: [{key}] must be a table")
    document: dict[str, Any] = json.loads(json.dumps(body, default=str))
    calendars = document.get("calendars", {})
    for name, calendar in calendars.items() if isinstance(calendars, dict) else ():
        if isinstance(calendar, dict) and calendar.get("holidays") == "CN":
            holidays, working = china_holidays(HOLIDAY_YEARS)
            calendar["holidays"] = sorted(d.isoformat() for d in holidays)
            extra = set(calendar.get("working", [])) | {d.isoformat() for d in working}
            calendar["working"] = sorted(extra)
        elif isinstance(calendar, dict) and isinstance(calendar.get("holidays"), str):
            raise ConfigError(
                f'{source}: {key}.calendars.{name}.holidays: use "CN" or a list of dates'
            )
    try:
        policy_from_document(document, None)
    except PolicyError as err:
        raise ConfigError(f"{source}: {key}.{err.key}: {err.problem}") from None
    return document


def _names(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(
        isinstance(v, str) and v.isidentifier() for v in value
    ):
        raise ConfigError(f"{where} must be a list of names (letters, digits, underscores)")
    return tuple(value)


def _extend(current: tuple[str, ...], extra: tuple[str, ...]) -> tuple[str, ...]:
    return current + tuple(name for name in extra if name not in current)


_INTAKE = {
    "channels": lambda s, v, w: replace(s, channels=_extend(s.channels, _names(v, w))),
    "categories": lambda s, v, w: replace(s, categories=_extend(s.categories, _names(v, w))),
    "priorities": lambda s, v, w: replace(s, priorities=_names(v, w) or s.priorities),
    "default_machine": lambda s, v, w: replace(s, default_machine=_names([v], w)[0]),
    "repeat_window_days": lambda s, v, w: replace(
        s, repeat_window=timedelta(days=positive_whole(v, w, 3650))
    ),
}
Applier = Callable[[Settings, Any, str], Settings]
"""Sets one key of a section: (settings, value, where) to the new settings."""


def _display_zone(settings: Settings, value: Any, where: str) -> Settings:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where} must be an IANA zone name such as Asia/Shanghai")
    try:
        ZoneInfo(value.strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{where}: unknown time zone {value!r}") from None
    return replace(settings, display_timezone=value.strip())


def _display_language(settings: Settings, value: Any, where: str) -> Settings:
    from casework.workflow.labels import LANGUAGES

    if value not in LANGUAGES:
        raise ConfigError(f"{where} must be one of {', '.join(LANGUAGES)}")
    return replace(settings, display_language=value)


def _console_url(settings: Settings, value: Any, where: str) -> Settings:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value.strip()) if isinstance(value, str) else None
    except ValueError:  # an unclosed [ of an IPv6 address
        parts = None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{where} must be an http:// or https:// address")
    if parts.query or parts.fragment:
        raise ConfigError(f"{where} may not carry a query or a fragment")
    return replace(settings, console_base_url=value.strip().rstrip("/"))


_DISPLAY: dict[str, Applier] = {"timezone": _display_zone, "language": _display_language}
_CONSOLE: dict[str, Applier] = {"base_url": _console_url}
_PRIVACY: dict[str, Applier] = {
    "erase_after_days": lambda s, v, w: replace(
        s, erase_after=timedelta(days=positive_whole(v, w, 36_500))
    ),
}

_LIMITS = {
    "max_note_chars": lambda s, v, w: replace(s, max_note_chars=positive_whole(v, w, 100_000)),
    "max_text_chars": lambda s, v, w: replace(
        s, max_text_chars=positive_whole(v, w, SUMMARY_COLUMN_CHARS)
    ),
    "max_data_bytes": lambda s, v, w: replace(s, max_data_bytes=positive_whole(v, w, 1 << 20)),
    "max_attachment_bytes": lambda s, v, w: replace(
        s, max_attachment_bytes=positive_whole(v, w, 200 << 20)
    ),
    "future_skew_s": lambda s, v, w: replace(
        s, future_skew=timedelta(seconds=positive_whole(v, w, 86_400))
    ),
    "max_clock_skew_s": lambda s, v, w: replace(
        s, max_clock_skew=timedelta(seconds=positive_whole(v, w, 100 * 366 * 86_400))
    ),
}
