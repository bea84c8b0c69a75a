"""After downtime: no alarm for a clock that has stopped, no mail that shows a case as it
was days ago, and old news in one digest per recipient list instead of a flood."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from casework.workflow import Engine, FixedClock
from casework.workflow.config import settings_from_mapping
from casework.workflow.outbox.mail import Outbox
from tests.support import open_sample
from tests.support.mail_server import TestServer

from casework.scheduler.mail.delivery import Deliverer  # isort: skip

H = timedelta(hours=1)


def _settings(server: TestServer, **mail: Any) -> Any:
    table = {"url": server.url, "sender": "casework@example.com", "agent_domain": "example.com"}
    return settings_from_mapping({"mail": {**table, **mail}}, "test")


def test_a_worker_back_after_days_sends_one_digest_per_recipient_list(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """Three cases; one answered at 30 h while no worker ran, two never. Back at 72 h:
    the answered case's first-response clock fires nothing, the lapsed deadlines of the
    others are recorded, and their mails go out as one digest per recipient list."""
    with Engine.open(db_url, clock=clock, config=_settings(server)) as engine:
        answered = open_sample(engine, customer="answered")
        for n in range(2):
            open_sample(engine, customer=f"silent-{n}")
        clock.advance(30 * H)
        engine.fire(answered, "apologise", actor="li.na")
        clock.advance(42 * H)
        fired = engine.process_due()
        assert not [f for f in fired if f.case_id == answered and f.clock == "first_response"]
        assert sum(f.late_by > 24 * H for f in fired) >= 4
        mails = Outbox(engine.context).list()
        report = Deliverer(engine).deliver_due()
    hour_ago = (clock.now() - H).isoformat()
    late = [m for m in mails if m.body["due_at"] < hour_ago]
    late_lists = Counter(m.recipients for m in late)
    digested = [r for r, n in late_lists.items() if n > 1]  # one late mail goes alone
    assert len(late) > len(late_lists) >= 3
    assert digested
    assert report.sent == len(mails)
    assert report.messages == len(late_lists) + len(mails) - len(late)
    subjects = [str(m["Subject"]) for _, m, _ in server.script.received]
    assert sum("late notices" in s for s in subjects) == len(digested)


def test_a_mail_shows_the_case_as_it_is_when_it_is_sent(
    db_url: str, clock: FixedClock, server: TestServer
) -> None:
    """Queued at the breach, sent six hours later after the case moved on: the mail
    names the state and owner of now."""
    settings = _settings(server, max_age_s=7 * 86400)
    with Engine.open(db_url, clock=clock, config=settings) as engine:
        case_id = open_sample(engine)
        clock.advance(24 * H)
        engine.process_due()
        clock.advance(H)
        engine.fire(case_id, "apologise", actor="li.na")
        engine.fire(case_id, "assign", actor="li.na", data={"to": "wang.wei"})
        clock.advance(5 * H)
        Deliverer(engine).deliver_due()
    bodies = [m.get_body(("plain",)).get_content() for _, m, _ in server.script.received]
    assert bodies
    for body in bodies:
        assert "State:     Apologised" in body
        assert "Owner:     wang.wei" in body
