"""``casework demo``: a newcomer's tour of one complaint on a throwaway database."""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import click

from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.mail.smtp_sink import SmtpSink
from casework.workflow.cli.support import CaseworkCommand, display_zone, started, table, zoned
from casework.workflow.clock import FixedClock
from casework.workflow.config import Settings
from casework.workflow.display.times import local_text, stamped
from casework.workflow.engine import Engine
from casework.workflow.errors import GuardFailed
from casework.workflow.mail.settings import MailSettings


def _say(text: str) -> None:
    click.echo(click.style("> ", bold=True) + text)


def run_demo(directory: Path, *, kept: bool = False) -> bool:
    """Walk one complaint through its steps on a database in ``directory``; verified?"""
    with SmtpSink() as sink:
        return _tour(directory, sink, kept=kept)


def _tour(directory: Path, sink: SmtpSink, *, kept: bool) -> bool:
    url = f"sqlite:///{directory / 'demo.db'}"
    clock = FixedClock(datetime.now(UTC).replace(microsecond=0) - timedelta(days=3))
    mail = MailSettings(
        url=sink.url,
        sender="Casework <casework@example.com>",
        agent_domain="example.com",
        languages={"Shenzhen": "zh"},
    )
    with Engine.open(url, config=Settings(mail=mail), clock=clock) as engine:
        started()
        _say(f"A throwaway database: {url}")
        case = engine.open_case(
            customer="CUST-0042",
            channel="phone",
            category="missed_appointment",
            summary="The technician did not come at the booked time.",
            branch="Guangzhou",
            actor="li.na",
            attributes={"product": "washing machine", "brand": "Acme"},
        )
        _say(f"Li Na receives a phone complaint and owns it: case {case.id} ({case.state}).")
        ignored = engine.open_case(
            customer="CUST-0077",
            channel="letter",
            category="service_delayed",
            summary="Still waiting for the spare part.",
            branch="Shenzhen",
            actor="zhao.lei",
        )
        _say(f"Zhao Lei receives a letter, case {ignored.id}, and forgets it.")
        clock.advance(timedelta(hours=2))
        engine.fire(case.id, "apologise", actor="li.na", note="Apologised, booked a new visit.")
        _say("Two hours later she apologises: the first response, well inside 24 hours.")
        engine.fire(case.id, "confirm_needs", actor="li.na", note="Wants a visit tomorrow 9-12.")
        _say("She confirms what the customer needs.")
        try:
            engine.fire(case.id, "resolve", actor="li.na")
        except GuardFailed as err:
            _say(f"Resolving without a solution is refused: {err}")
        clock.advance(timedelta(hours=20))
        engine.fire(
            case.id, "resolve", actor="li.na", data={"solution": "Repaired on site, fee waived"}
        )
        _say("The next day the technician repairs it; the case is resolved with its solution.")
        clock.advance(timedelta(days=1))
        engine.fire(case.id, "follow_up", actor="wang.wei", data={"satisfaction": 5})
        _say("A day later the service centre calls back: satisfaction 5 of 5.")
        fired = engine.process_due(clock.now())
        late = engine.get(ignored.id)
        _say(
            f"The scheduler fires {len(fired)} deadline(s): the letter got no first response "
            f"in 24 hours, so case {ignored.id} climbed to escalation level "
            f"{late.escalation_level}; each level queued a mail to its supervisor."
        )
        delivered = Deliverer(engine).deliver_due()
        _say(
            f"Delivery sends {delivered.sent} mail(s) to a local SMTP server ({sink.url}), "
            "each once, with a Message-ID fixed by its deadline:"
        )
        _show_mails(sink)
        events = engine.history(case.id)
        zone = display_zone(engine)
        click.echo()
        table(
            ("seq", zoned("at", zone), "event", "transition", "actor"),
            [
                (
                    str(e.seq),
                    local_text(e.occurred_at, zone.zone),
                    e.event,
                    f"{e.from_state or '-'} -> {e.to_state}",
                    e.actor,
                )
                for e in events
            ],
        )
        click.echo()
        at = events[2].occurred_at
        _say(f"Replay as at {stamped(at, zone.zone)}: state {engine.replay(case.id, at).state}.")
        report = engine.verify()
        _say(f"Verify: {'ok' if report.ok else 'BROKEN'}, {report.events} events in hash chains.")
        if kept:
            _say("Try next, on the kept database:")
            for line in (f"history {case.id}", f"show {ignored.id}", "list --overdue",
                         f"report case {case.id} --html case.html", "verify"):  # fmt: skip
                click.echo(f"    casework --db {url} {line}")
        else:
            _say("Try next: keep the database to look around (casework demo --keep ./demo),")
            _say("or start your own: casework open --help, casework serve (the web console).")
        return report.ok


def _show_mails(sink: SmtpSink) -> None:
    for got in sink.received:
        msg = got.message
        click.echo(f"    To: {msg['To']}  Message-ID: {msg['Message-ID']}")
        click.echo(f"    Subject: {msg['Subject']}")
    last = sink.received[-1].message
    body = last.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    click.echo()
    for line in text.splitlines()[:12]:
        click.echo(f"    | {line}")
    click.echo("    | ...")
    click.echo()


@click.command("demo", cls=CaseworkCommand)
@click.option(
    "--keep",
    "keep_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Keep the demo database in this folder instead of a temporary one.",
)
def demo_command(keep_dir: Path | None) -> None:
    """A tour of one complaint on a throwaway database."""
    if keep_dir is not None:
        keep_dir.mkdir(parents=True, exist_ok=True)
        ok = run_demo(keep_dir, kept=True)
    else:
        with tempfile.TemporaryDirectory(prefix="casework-demo-") as tmp:
            ok = run_demo(Path(tmp))
    if not ok:
        raise SystemExit(1)
