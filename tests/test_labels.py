"""The label catalogue: every identifier a person reads has a Chinese and an English
label; a machine's own labels come first; anything unknown falls back, never raises."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from casework.machines.after_sales import COMPLAINT_V2, ROUTE_UNITS
from casework.machines.definition import EVIDENCE_KINDS, SYSTEM_EVENTS, MachineDefinition
from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.timers import TIMER_EVENTS
from casework.machines.warranty import BRAND_CLASSES, FAULT_CLASSES, PRODUCT_CLASSES, REMEDIES
from casework.workflow.access.tokens import ROLES
from casework.workflow.cases.catalog import installed_registry
from casework.workflow.config import Settings
from casework.workflow.labels import LANGUAGES, catalogue, label, labelled, text

MACHINES = list(installed_registry())


def _identifiers() -> list[tuple[str, str, MachineDefinition | None]]:
    settings = Settings()
    found: list[tuple[str, str, MachineDefinition | None]] = []
    for machine in MACHINES:
        found += [("state", s, machine) for s in machine.states]
        events = (*machine.events, *machine.agent_events, "open", "escalate_now", "reclassify")
        found += [("event", e, machine) for e in (*events, "attach", *SYSTEM_EVENTS)]
        clocks = (machine.sla or {}).get("clocks", {})
        found += [("clock", c, machine) for c in clocks]
        timers = {t.name for specs in machine.timers.values() for t in specs}
        found += [("timer", t, machine) for t in sorted(timers)]
        found += [("field", a, machine) for a in machine.attributes]
        for rules in machine.rules.values():
            for rule in rules:
                for condition in rule.conditions:
                    found.append(("guard", condition.name, machine))
                    found += [("field", f, machine) for f in condition.data_fields]
    found += [("category", c, None) for c in settings.categories]
    found += [("channel", c, None) for c in settings.channels]
    found += [("priority", p, None) for p in settings.priorities]
    found += [("timer", t, None) for t in TIMER_EVENTS]
    found += [("role", r, None) for r in ROLES]
    found += [("remedy", r, None) for r in REMEDIES]
    found += [("route_unit", u, None) for u in ROUTE_UNITS]
    found += [("brand_class", b, None) for b in BRAND_CLASSES]
    found += [("evidence", k, None) for k in EVIDENCE_KINDS]
    found += [("product_class", t, None) for t in PRODUCT_CLASSES.ids()]
    found += [("fault_class", t, None) for t in FAULT_CLASSES.ids()]
    found += [("violation", v, None) for v in PARTNER_RULES.deductions]
    unique = {(kind, ident, m.key if m else None): (kind, ident, m) for kind, ident, m in found}
    return list(unique.values())


def test_every_identifier_has_a_chinese_and_an_english_label() -> None:
    missing = []
    for kind, ident, machine in _identifiers():
        zh = label("zh", kind, ident, machine)
        en = label("en", kind, ident, machine)
        if not zh or zh == ident or not en:
            missing.append(f"{kind}:{ident} zh={zh!r} en={en!r}")
        # Chinese labels are Chinese: no identifier spelt with underscores leaks through.
        if "_" in zh:
            missing.append(f"{kind}:{ident} zh={zh!r}")
    assert not missing, "\n".join(missing)


def test_both_catalogues_hold_the_same_messages() -> None:
    assert LANGUAGES == ("en", "zh")
    ids = {lang: {m.id for m in catalogue(lang) if m.id} for lang in LANGUAGES}
    assert ids["zh"] == ids["en"]
    assert all(m.string for lang in LANGUAGES for m in catalogue(lang) if m.id)


def test_the_vocabularies_are_the_one_source_of_their_names() -> None:
    battery = next(t for t in PRODUCT_CLASSES.terms if t.id == "battery")
    assert label("zh", "product_class", "battery") == battery.zh
    assert label("en", "product_class", "battery") == battery.en
    fault = PARTNER_RULES.deductions["repeat_repair"]
    assert label("zh", "violation", "repeat_repair") == fault.zh
    assert label("en", "violation", "repeat_repair") == fault.en


def test_a_machine_labels_itself_before_the_catalogue() -> None:
    own = replace(
        COMPLAINT_V2,
        name="back-office",
        labels={"zh": {"state:needs_confirmed": "需求已核实", "event:inspect": "检验"}},
    )
    assert label("zh", "state", "needs_confirmed", own) == "需求已核实"
    assert label("zh", "event", "inspect", own) == "检验"
    # What the machine leaves alone comes from the catalogue; other machines are unchanged.
    assert label("zh", "state", "received", own) == "已受理"
    assert label("zh", "state", "needs_confirmed", COMPLAINT_V2) == "已确认需求"
    # English has no label of the machine's: the catalogue's, then the identifier itself.
    assert label("en", "state", "needs_confirmed", own) == "Needs confirmed"
    assert label("en", "event", "inspect", own) == "inspect"


def test_fallbacks_never_raise() -> None:
    assert label("zh", "state", "no_such_state") == "no_such_state"
    assert label("zh", "no_such_kind", "x") == "x"
    assert label(None, "priority", "urgent") == "Urgent"
    assert label("fr", "priority", "urgent") == "Urgent"
    assert label("zh-CN", "priority", "urgent") == "紧急"
    assert label("zh", "priority", None) == ""
    # A field of one event has its own label; an unknown event's falls back to the field's.
    assert label("zh", "field", "book_visit.to") == "上门时段结束"
    assert label("zh", "field", "other_event.to") == label("zh", "field", "to")
    assert labelled("zh", "priority", ["normal", "urgent"]) == "普通、紧急"
    assert labelled("en", "priority", ["normal", "urgent"]) == "Normal, Urgent"


def test_sentences_are_formatted_and_fall_back() -> None:
    need = label("zh", "guard", "window_given")
    said = text("zh", "refused.guard", event=label("zh", "event", "book_visit"), need=need)
    assert said == f"不能执行“预约上门”：{need}。"  # noqa: RUF001 - Chinese punctuation
    assert text("en", "refused.unknown_case", case="b7e72a68") == "There is no case b7e72a68."
    assert text("en", "refused.guard") == "{event} refused: {need}."
    assert text("zh", "no.such.message") == "no.such.message"
    assert text("de", "refused.stale").startswith("Someone changed this case")


def test_a_folder_of_catalogues_relabels(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "zh" / "LC_MESSAGES"
    folder.mkdir(parents=True)
    (folder / "casework.po").write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n\n'
        'msgid "state:received"\nmsgstr "已登记"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CASEWORK_LABELS", str(tmp_path))
    catalogue.cache_clear()
    try:
        assert label("zh", "state", "received") == "已登记"
        assert label("zh", "state", "resolved") == "已解决"
    finally:
        monkeypatch.delenv("CASEWORK_LABELS")
        catalogue.cache_clear()
    assert label("zh", "state", "received") == "已受理"
