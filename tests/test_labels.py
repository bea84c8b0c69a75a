"""The label catalogue: every identifier a person reads has a Chinese and an English
label; a machine's own labels come first; anything unknown falls back, never raises."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest

from casework.machines.after_sales import COMPLAINT_V2, ROUTE_UNITS
from casework.machines.definition import EVIDENCE_KINDS, SYSTEM_EVENTS, MachineDefinition
from casework.machines.partner_rules import PARTNER_RULES
from casework.machines.timers import TIMER_EVENTS
from casework.machines.warranty import BRAND_CLASSES, FAULT_CLASSES, PRODUCT_CLASSES, REMEDIES
from casework.workflow import Engine, FixedClock
from casework.workflow.access.tokens import ROLES
from casework.workflow.catalog import installed_registry
from casework.workflow.config import Settings
from casework.workflow.errors import (
    CaseworkError,
    EventNotAllowed,
    GuardFailed,
    InvalidInput,
    TimeOutOfOrder,
)
from casework.workflow.labels import LANGUAGES, catalogue, label, labelled, refusal, text
from tests.support import START, open_sample

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
        found += [("ladder", r["name"], machine) for r in (machine.sla or {}).get("ladder", [])]
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
        'msgid "state:received"\nmsgstr "已登记"\n\n'
        'msgctxt "complaint"\nmsgid "state:resolved"\nmsgstr "已处理完毕"\n',
        encoding="utf-8",
    )
    monkeypatch.setenv("CASEWORK_LABELS", str(tmp_path))
    catalogue.cache_clear()
    try:
        assert label("zh", "state", "received") == "已登记"
        assert label("zh", "state", "resolved") == "已解决"
        # a message under a machine's name labels that machine's identifiers only
        assert label("zh", "state", "resolved", COMPLAINT_V2) == "已处理完毕"
        assert label("zh", "state", "resolved", "complaint") == "已处理完毕"
        assert label("zh", "state", "resolved", "other-machine") == "已解决"
    finally:
        monkeypatch.delenv("CASEWORK_LABELS")
        catalogue.cache_clear()
    assert label("zh", "state", "received") == "已受理"


def test_refusals_read_in_the_page_language(engine: Engine) -> None:
    """The common refusals of a real engine, worded for a person in Chinese and English;
    the errors themselves keep their identifiers and English."""
    case_id = open_sample(engine, machine="complaint")
    refused: dict[str, Exception] = {}
    for name, attempt in {
        "unknown": lambda: engine.get("0" * 16),
        "guard": lambda: engine.fire(case_id, "route", actor="li.na", data={"to": "moon"}),
        "not_here": lambda: engine.fire(case_id, "book_visit", actor="li.na"),
        "stale": lambda: engine.fire(case_id, "apologise", actor="li.na", expected_version=0),
        "choice": lambda: engine.open_case(
            customer="C", channel="pigeon", category="other", summary="s", actor="li.na"
        ),
        "empty": lambda: engine.open_case(
            customer="C", channel="phone", category="other", summary=" ", actor="li.na"
        ),
        "long": lambda: engine.open_case(
            customer="C" * 100_000, channel="phone", category="other", summary="s"
        ),
    }.items():
        with pytest.raises(CaseworkError) as caught:
            attempt()
        refused[name] = caught.value
    assert isinstance(refused["guard"], GuardFailed)
    assert "unit_given" in str(refused["guard"])  # the error keeps its identifiers

    zh = {name: refusal("zh", error) for name, error in refused.items()}
    assert zh["unknown"] == f"找不到投诉单 {'0' * 16}。"
    assert zh["guard"].startswith("不能执行“转交责任部门”：需要选择责任部门")  # noqa: RUF001
    assert "“预约上门”" in zh["not_here"]
    assert "“已受理”" in zh["not_here"]
    assert "致歉" in zh["not_here"]  # what can be done now
    assert "刚被其他人更新" in zh["stale"]
    assert "“pigeon”不是“渠道”的可选项" in zh["choice"]
    assert "电话" in zh["choice"]
    assert zh["empty"] == "请填写“投诉内容”。"
    assert re.fullmatch(r"“客户”太长（最多 \d+ 字）。", zh["long"]), zh["long"]  # noqa: RUF001
    for said in zh.values():
        assert not re.search(r"[a-z]+_[a-z]+", said), said

    en = {name: refusal("en", error) for name, error in refused.items()}
    assert en["guard"].startswith("Route to a unit refused: needs the responsible unit")
    assert en["not_here"].startswith("Book a visit cannot be done while the case is Received.")
    assert "pigeon is not a choice for Channel" in en["choice"]
    assert re.fullmatch(r"Customer is too long \(at most \d+ characters\)\.", en["long"])


def test_other_refusals_fall_back_to_their_words() -> None:
    assert refusal("zh", TimeOutOfOrder("at 2026 lies in the future", field="at")) == (
        "时间不能晚于现在。"
    )
    closed = EventNotAllowed("c1", "reopen", "withdrawn", ())
    assert refusal("en", closed) == "The case is closed (Withdrawn): nothing more can be done."
    assert refusal("zh", InvalidInput("bad thing")) == "输入有误：bad thing"  # noqa: RUF001
    assert refusal("en", RuntimeError("boom")) == "Refused: boom"


REPORTS = Path(__file__).parent.parent / "workflow" / "reports"
SAID = re.compile(r"""_\(\s*(?:"((?:[^"\\]|\\.)*)"|'([^']*)')""")


def test_every_sentence_of_the_report_pages_has_a_chinese_text() -> None:
    sources = [*REPORTS.glob("templates/*.html"), *REPORTS.glob("*.py")]
    msgids = {a or b for path in sources for a, b in SAID.findall(path.read_text("utf-8"))}
    assert len(msgids) > 100
    untranslated = sorted(m for m in msgids if text("zh", m) == m)
    assert not untranslated


def _visible(html: str) -> str:
    """The page's text as a reader sees it: no markup, styles or drawn charts."""
    html = re.sub(r"(?s)<(svg|style)\b.*?</\1>", " ", html)
    return re.sub(r"<[^>]+>", " ", html)


def test_report_pages_speak_the_viewers_language(
    engine: Engine, clock: FixedClock, tmp_path: Path
) -> None:
    """The SLA, complaint, partner, what-if and case pages in Chinese: ``lang="zh-CN"``, labels
    for clocks, categories and channels, no identifier; English ones by default."""
    from casework.machines.sla import DEFAULT_DOCUMENT, policy_from_document
    from casework.workflow.display.periods import period_of
    from casework.workflow.partners.ratings import partner_report, quarter
    from casework.workflow.reports.business import (
        complaints_page,
        complaints_report,
        sla_page,
        sla_report,
    )
    from casework.workflow.reports.partner_page import partners_page
    from casework.workflow.reports.whatif_page import whatif_page
    from casework.workflow.sla.whatif import simulate

    for branch, category in (("东莞长安店", "missed_appointment"), ("深圳南山店", "other")):
        open_sample(engine, branch=branch, category=category, channel="letter")
    clock.advance(timedelta(days=4))
    engine.process_due()
    period, _ = period_of(month=f"{START:%Y-%m}", zone=UTC, now=clock.now())
    tighter = {**DEFAULT_DOCUMENT, "name": "tighter"}
    machine = engine.registry.get("complaint")
    proposal = policy_from_document(tighter, machine.states, machine.events)
    reports = {
        "sla": (sla_page, sla_report(engine.context, period)),
        "complaints": (complaints_page, complaints_report(engine.context, period)),
        "whatif": (whatif_page, simulate(engine.context, proposal, period)),
        "partners": (
            partners_page,
            partner_report(engine.context, quarter(f"{START:%Y}Q4", UTC), engine.settings.partners),
        ),
    }
    expected = {
        "sla": ("时限达标率", "首次响应", "预约未上门", "信函", " 至 "),
        "complaints": ("投诉结构", "预约未上门", "其他", "信函", " 至 "),
        "whatif": ("假如当时执行时限方案 tighter", "首次响应", "预约未上门"),
        "partners": ("合作方考核",),
    }
    for name, (page, report) in reports.items():
        zh = page(report, lang="zh")
        assert '<html lang="zh-CN">' in zh, name
        shown = _visible(zh)
        for words in expected[name]:
            assert words in shown, (name, words)
        for identifier in ("first_response", "missed_appointment", "letter", "Compliance"):
            assert identifier not in shown, (name, identifier)
        assert '<html lang="en">' in page(report), name
    assert "Missed appointment" in _visible(complaints_page(reports["complaints"][1]))
    from casework.workflow.reports.case_page import case_report

    case_id = engine.list()[0].id
    zh = _visible(case_report(engine.context, case_id, UTC, lang="zh"))
    for words in ("投诉单", "处理记录", "首次响应", "登记投诉", "已受理", "信函", "小时"):
        assert words in zh, words
    for identifier in ("first_response", "received", "letter", "Timeline"):
        assert identifier not in zh, identifier
    assert "Timeline" in _visible(case_report(engine.context, case_id, UTC))


def test_the_report_command_takes_its_language(db_url: str, tmp_path: Path) -> None:
    """``--lang`` chooses the page's language, else ``[display] language``, else $LANG."""
    from click.testing import CliRunner

    from casework.workflow.cli import main

    config = tmp_path / "casework.toml"
    config.write_text('[display]\nlanguage = "zh"\n', encoding="utf-8")
    runner = CliRunner()
    base = ["--db", db_url, "report", "complaints", "--last", "7d", "--html"]
    pages = {
        "given": ([*base, str(tmp_path / "a.html"), "--lang", "zh"], {"LANG": "C.UTF-8"}),
        "configured": (["--config", str(config), *base, str(tmp_path / "b.html")], {}),
        "environment": ([*base, str(tmp_path / "c.html")], {"LANG": "zh_CN.UTF-8"}),
        "default": ([*base, str(tmp_path / "d.html")], {"LANG": "C.UTF-8"}),
    }
    found = {}
    for name, (args, env) in pages.items():
        result = runner.invoke(main, args, env=env)
        assert result.exit_code == 0, result.output
        found[name] = Path(args[args.index("--html") + 1]).read_text("utf-8")
    for name in ("given", "configured", "environment"):
        assert '<html lang="zh-CN">' in found[name], name
    assert '<html lang="en">' in found["default"]
    wrong = runner.invoke(main, [*base, str(tmp_path / "e.html"), "--lang", "fr"])
    assert wrong.exit_code == 2
