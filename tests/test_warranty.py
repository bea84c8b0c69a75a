"""The three guarantees (seed 000) as China's Civil Code counts days, at every boundary,
and ``decide_remedy`` refusing with the rule, its version and when the window closed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from casework.machines.warranty import WARRANTY_RULES, period_end
from casework.workflow import Engine, FixedClock, GuardFailed, InvalidInput
from casework.workflow.cases.remedies import RemedyRefused
from tests.support import START, decidable, open_sample

SHANGHAI = ZoneInfo("Asia/Shanghai")


def _at(day: str, hour: int = 12, minute: int = 0) -> datetime:
    return datetime.fromisoformat(f"{day}T{hour:02d}:{minute:02d}:00").replace(tzinfo=SHANGHAI)


@pytest.mark.parametrize(
    ("sold", "kind", "at", "allowed"),
    [
        # bought 1 March: returned until 8 March 24:00, exchanged until 16 March 24:00
        ("2026-03-01", "return", _at("2026-03-08", 23, 59), True),
        ("2026-03-01", "return", _at("2026-03-09", 0, 0), False),
        ("2026-03-01", "exchange", _at("2026-03-16", 23, 59), True),
        ("2026-03-01", "exchange", _at("2026-03-17", 0, 0), False),
        # the year's repair window ends on the corresponding day
        ("2026-03-01", "repair", _at("2027-03-01", 23, 59), True),
        ("2026-03-01", "repair", _at("2027-03-02", 0, 0), False),
        # a leap day purchase: the next year has no 29 February, so the month's end
        ("2024-02-29", "repair", _at("2025-02-28", 23, 59), True),
        ("2024-02-29", "repair", _at("2025-03-01", 0, 0), False),
        # a day counted in Shanghai: 16:00 UTC on the 8th is already the 9th there
        ("2026-03-01", "return", datetime(2026, 3, 8, 15, 59, tzinfo=UTC), True),
        ("2026-03-01", "return", datetime(2026, 3, 8, 16, 0, tzinfo=UTC), False),
    ],
)
def test_windows_end_at_midnight_of_their_last_day_in_the_store_s_zone(
    sold: str, kind: str, at: datetime, allowed: bool
) -> None:
    verdict = WARRANTY_RULES.verdict(
        kind, sold=date.fromisoformat(sold), product_class="phone", brand="华为",
        fault_class="performance", at=at,
    )  # fmt: skip
    assert verdict.allowed is allowed


def test_accessories_have_their_own_repair_windows() -> None:
    sold = date(2026, 1, 31)
    assert period_end(sold, "Asia/Shanghai", months=6) == _at("2026-08-01", 0)  # battery
    assert period_end(sold, "Asia/Shanghai", months=1) == _at("2026-03-01", 0)  # no 31 Feb
    battery = WARRANTY_RULES.verdict(
        "repair", sold=sold, product_class="battery", brand=None, fault_class=None,
        at=_at("2026-08-01", 0, 1),
    )  # fmt: skip
    assert not battery.allowed
    assert battery.rule == "warranty repair within 6 months of sale"


def test_a_decision_records_its_rule_and_a_refusal_names_when_the_window_closed(
    engine: Engine, clock: FixedClock
) -> None:
    # START is 23 November 09:00 in Shanghai: three days after the sale
    case_id = decidable(engine)
    case = engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "return"})
    decided = engine.history(case_id)[-1].data
    assert decided["rules_version"] == WARRANTY_RULES.version
    assert decided["rule"] == "return within 7 days of sale"
    assert decided["window_closes_at"] == "2026-11-28T00:00:00+08:00"
    assert case.facts["remedy"] == "return"
    late = decidable(engine, purchase_date="2026-11-01")
    with pytest.raises(RemedyRefused) as refused:
        engine.fire(late, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
    message = str(refused.value)
    assert "exchange within 15 days of sale" in message
    assert "warranty rules v2" in message
    assert "2026-11-17T00:00:00+08:00" in message
    assert refused.value.exit_status == 2
    engine.fire(late, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    assert engine.verify().ok


def test_strict_brands_need_a_test_report_and_customer_faults_pay(engine: Engine) -> None:
    apple = decidable(engine, brand="Apple")
    with pytest.raises(RemedyRefused, match="attach it first"):
        engine.fire(apple, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
    with pytest.raises(RemedyRefused, match="no test report attached"):
        engine.fire(apple, "decide_remedy", actor="li.na",
                    data={"remedy": "exchange", "test_report": "ab" * 32})  # fmt: skip
    engine.attach(apple, b"test report", kind="test_report", name="r.pdf", actor="li.na")
    engine.fire(apple, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
    dropped = decidable(engine, fault_class="customer_caused")
    with pytest.raises(RemedyRefused, match="paid repair only"):
        engine.fire(dropped, "decide_remedy", actor="li.na", data={"remedy": "repair"})
    engine.fire(dropped, "decide_remedy", actor="li.na", data={"remedy": "paid_repair"})
    unknown = open_sample(engine)
    engine.fire(unknown, "apologise", actor="li.na")
    engine.fire(unknown, "confirm_needs", actor="li.na")
    with pytest.raises(RemedyRefused, match="purchase_date"):
        engine.fire(unknown, "decide_remedy", actor="li.na", data={"remedy": "repair"})


def test_a_paid_repair_carries_its_quote_and_the_customer_s_answer(
    engine: Engine, clock: FixedClock
) -> None:
    case_id = decidable(engine, fault_class="customer_caused")
    engine.fire(case_id, "decide_remedy", actor="li.na", data={"remedy": "paid_repair"})
    with pytest.raises(GuardFailed, match="quote first"):
        engine.fire(case_id, "accept_quote", actor="li.na")
    with pytest.raises(GuardFailed, match="amount"):
        engine.fire(case_id, "quote", actor="li.na", data={"amount": "free", "currency": "CNY"})
    engine.fire(case_id, "quote", actor="li.na", data={"amount": "180.00", "currency": "CNY"})
    clock.advance(timedelta(hours=1))
    case = engine.fire(case_id, "accept_quote", actor="li.na", note="客户同意付费维修")
    assert (case.facts["amount"], case.facts["currency"]) == ("180.00", "CNY")
    with pytest.raises(GuardFailed, match="quote first"):
        engine.fire(case_id, "decline_quote", actor="li.na")
    assert [e.event for e in engine.history(case_id)][-3:] == [
        "decide_remedy", "quote", "accept_quote",
    ]  # fmt: skip
    assert START.tzinfo is UTC


def test_evidence_is_kept_by_digest_and_verify_names_an_altered_or_missing_file(
    db_url: str, tmp_path: Path
) -> None:
    import hashlib

    from click.testing import CliRunner
    from sqlalchemy import delete, update

    from casework.storage.tables import attachments_table
    from casework.workflow.cli import main

    report = tmp_path / "检测报告.pdf"
    report.write_bytes(b"%PDF-1.4 manufacturer's test report: mainboard fault")
    digest = hashlib.sha256(report.read_bytes()).hexdigest()
    today = datetime.now(SHANGHAI).date().isoformat()  # the command line reads the real clock
    with Engine.open(db_url) as engine:
        apple = decidable(engine, brand="Apple", purchase_date=today)
    attach = ["attach", apple[:8], str(report), "--kind", "test_report", "--actor", "li.na"]
    attached = CliRunner().invoke(main, [*attach, "--db", db_url])
    assert attached.exit_code == 0, attached.output
    assert digest in attached.stdout
    too_big = CliRunner().invoke(main, ["attach", apple, str(report), "--kind", "photo",
                                        "--actor", "li.na", "--db", db_url, "--config",
                                        str(_limits(tmp_path))])  # fmt: skip
    assert too_big.exit_code == 2
    assert "the limit is 10" in too_big.stderr
    with Engine.open(db_url) as engine:
        case = engine.fire(apple, "decide_remedy", actor="li.na", data={"remedy": "exchange"})
        assert engine.history(apple)[-1].data["test_report"] == digest  # the attached one
        assert case.facts["remedy"] == "exchange"
        with pytest.raises(InvalidInput, match="content"):
            engine.fire(apple, "attach", actor="li.na", data={"digest": digest})
        assert engine.verify().ok
        with engine.db.begin() as conn:
            conn.execute(update(attachments_table).values(content=b"forged"))
        altered = engine.verify()
        assert [p.reason for p in altered.problems] == [
            f"attachment {digest[:16]} (test_report, 检测报告.pdf) was altered: its content "
            "no longer has the digest recorded"
        ]
        with engine.db.begin() as conn:
            conn.execute(delete(attachments_table))
        assert "is missing" in engine.verify(apple).problems[0].reason
        both = engine.verify(workers=2)  # each process checks the files of its cases
        assert [p.reason for p in both.problems if "is missing" in p.reason]


def _limits(folder: Path) -> Path:
    config = folder / "small.toml"
    config.write_text("[limits]\nmax_attachment_bytes = 10\n", encoding="utf-8")
    return config
