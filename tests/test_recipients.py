"""Mail goes only where the configuration says, and one bad mail never stops the rest."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import select, update

from casework.storage.tables import outbox_table
from casework.workflow import Engine, FixedClock, InvalidInput
from casework.workflow.cli import main
from casework.workflow.config import settings_from_mapping
from casework.workflow.mail.settings import MailSettings
from casework.workflow.outbox.mail import Outbox
from tests.support import open_sample, snapshot
from tests.support.mail_server import TestServer

from casework.scheduler.mail.delivery import Deliverer  # isort: skip

H = timedelta(hours=1)


def _settings(server: TestServer, **mail: Any) -> Any:
    table = {"url": server.url, "sender": "casework@example.com", "agent_domain": "example.com"}
    return settings_from_mapping({"mail": {**table, **mail}}, "test")


@pytest.fixture
def mail_engine(db_url: str, clock: FixedClock, server: TestServer) -> Iterator[Engine]:
    with Engine.open(db_url, clock=clock, config=_settings(server)) as engine:
        yield engine


@pytest.mark.parametrize(
    ("how", "value"),
    [
        ("actor", "x@evil.example"),
        ("to", "y@evil.example"),
        ("to", "x@example.com\nBcc: spy@evil.example"),
        ("to", "x\r\nBcc: spy"),
        ("to", "li\u0085na"),
        ("to", "li\u2028na"),
        ("to", "a" * 101),
    ],
)
def test_an_owner_is_an_agent_id_never_an_address(engine: Engine, how: str, value: str) -> None:
    """``open --actor`` and ``assign to`` take agent ids: no '@', no line breaks of any
    kind, a length limit; nothing is written."""
    case_id = open_sample(engine)
    before = snapshot(engine)

    def attempt() -> object:
        if how == "actor":
            return open_sample(engine, actor=value)
        return engine.fire(case_id, "assign", actor="li.na", data={"to": value})

    with pytest.raises(InvalidInput):
        attempt()
    assert snapshot(engine) == before


def test_an_address_is_never_taken_from_case_data() -> None:
    """Only ``mail.agents`` and ``mail.agent_domain`` give an agent an address."""
    settings = MailSettings(agent_domain="example.com", agents={"王伟": "wang.wei@example.com"})
    assert settings.agent_address("x@evil.example") is None
    assert settings.agent_address("li.na") == "li.na@example.com"
    assert settings.agent_address("王伟") == "wang.wei@example.com"
    assert settings.agent_address("李娜") is None
    assert 'add "李娜" = "<address>" to [mail.agents]' in (settings.agent_problem("李娜") or "")


def _forge(engine: Engine, **changes: Any) -> None:
    """Give the first outbox row other values, as rows written before the input checks
    (or by hand) may hold."""
    with engine.db.begin() as conn:
        first = conn.execute(select(outbox_table.c.id).order_by(outbox_table.c.id)).scalar()
        conn.execute(update(outbox_table).where(outbox_table.c.id == first).values(**changes))


def _ten_warnings(engine: Engine, clock: FixedClock) -> None:
    for n in range(10):
        open_sample(engine, customer=f"C{n}")
    clock.advance(18 * H)
    engine.process_due()


@pytest.mark.parametrize(
    "poison",
    [
        {"recipients": ["x@example.com\nBcc: spy@evil.example"]},
        {"recipients": ["spy@evil.example"]},
        {"body": {"case_id": "x"}},  # a body the templates cannot render
        {"kind": "escalation", "recipients": ["not an address"]},
    ],
)
def test_one_poisoned_mail_is_a_dead_letter_and_the_rest_go_out(
    mail_engine: Engine, clock: FixedClock, server: TestServer, poison: dict[str, Any]
) -> None:
    """Ten warnings, the first poisoned: it becomes a dead letter naming what is wrong,
    the other nine are sent, nothing stays ``sending``, and no mail reaches an address
    that case data chose."""
    _ten_warnings(mail_engine, clock)
    _forge(mail_engine, **poison)
    report = Deliverer(mail_engine).deliver_due()
    assert (report.sent, report.dead) == (9, 1)
    statuses = [m.status for m in Outbox(mail_engine.context).list()]
    assert statuses.count("sent") == 9
    assert statuses.count("dead") == 1
    [dead] = Outbox(mail_engine.context).list(status="dead")
    assert dead.last_error
    reached = {rcpt for rcpts, _, _ in server.script.received for rcpt in rcpts}
    assert reached == {"li.na@example.com"}


def test_a_chinese_owner_gets_mail_through_the_agent_map(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """王伟 has no address from the domain: the dead letter says to add the id to
    mail.agents; with it added, ``outbox retry --all`` sends the mail to the mapped address."""
    with Engine.open(db_url, clock=clock, config=_settings(server)) as engine:
        open_sample(engine, actor="王伟")
        clock.advance(18 * H)
        engine.process_due()
        Deliverer(engine).deliver_due()
        [dead] = Outbox(engine.context).list(status="dead")
    assert "mail.agent_domain gives addresses to agent ids of plain ASCII" in (
        dead.last_error or ""
    )
    assert 'add "王伟" = "<address>" to [mail.agents]' in (dead.last_error or "")
    result = CliRunner().invoke(main, ["--db", db_url, "outbox", "retry", "--all", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"queued": 1, "status": "dead"}
    mapped = _settings(server, agents={"王伟": "wang.wei@example.com"})
    clock.set(datetime.now(UTC))  # the command ran on the real clock
    with Engine.open(db_url, clock=clock, config=mapped) as engine:
        assert Deliverer(engine).deliver_due().sent == 1
    [(rcpts, _, _)] = server.script.received
    assert rcpts == ("wang.wei@example.com",)


def test_an_owner_without_an_address_is_reported_at_assignment(
    db_url: str, tmp_path: Any, server: TestServer
) -> None:
    """``open`` and ``assign`` to an agent the mail settings cannot reach warn at once."""
    config = tmp_path / "casework.toml"
    config.write_text(f'[mail]\nurl = "{server.url}"\nagent_domain = "example.com"\n')
    base = ["--db", db_url, "--config", str(config)]
    runner = CliRunner()
    opened = runner.invoke(
        main,
        [*base, "open", "--customer", "C", "--channel", "phone", "--category", "other",
         "--summary", "s", "--actor", "li.na"],
    )  # fmt: skip
    assert opened.exit_code == 0, opened.output
    assert opened.stderr == ""
    case_id = opened.stdout.strip()
    moved = runner.invoke(main, [*base, "fire", case_id, "assign", "--actor", "li.na",
                                 "--data", "to=王伟"])  # fmt: skip
    assert moved.exit_code == 0, moved.output
    assert "warning: no mail address for agent '王伟'" in moved.stderr
    assert "[mail.agents]" in moved.stderr
