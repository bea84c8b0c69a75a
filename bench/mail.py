"""Escalation mail delivery: mails per second from the outbox to a local SMTP server.

    python -m bench.mail [--backend both] [--mails 2000] [--per-connection 100] [--rounds 2]

The outbox is filled by the engine itself (one level-1 escalation per case, each with
its case history), then ``Deliverer.deliver_due`` sends it to an aiosmtpd sink running
in its own process on loopback:

(a) with one mail per SMTP connection (connect, EHLO, send, QUIT every time);
(b) with up to ``--per-connection`` mails per connection.

The baseline, measured in the same run, is ``smtplib`` alone sending the same number
of pre-built messages over one connection to the same sink: the floor set by the SMTP
round trips and the sink. Each figure is the best of ``--rounds`` interleaved runs.
Target: at least 200 mails per second.
"""

from __future__ import annotations

import argparse
import multiprocessing
import smtplib
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from multiprocessing.synchronize import Event
from typing import Any

from sqlalchemy import update

from bench.common import backends, postgres_url, report, sqlite_url
from bench.sla_gen import add_open_cases
from casework.machines.sla import DEFAULT_DOCUMENT
from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.mail.smtp_sink import free_port
from casework.scheduler.mail.smtp_transport import SmtpTransport
from casework.storage.tables import outbox_table
from casework.workflow import Engine, FixedClock, Settings
from casework.workflow.cli.logs import configure_logging
from casework.workflow.mail.settings import MailSettings


class _Counter:
    async def handle_DATA(self, _server: Any, _session: Any, _envelope: Any) -> str:
        return "250 2.0.0 OK"


def _sink(port: int, ready: Event, stop: Event) -> None:
    from aiosmtpd.controller import Controller

    controller = Controller(_Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    stop.wait()
    controller.stop()


def _settings(port: int, per_connection: int) -> Settings:
    clocks = {"first_response": {"runs_in": ["received"], "within_s": 3600, "warn_at": None}}
    ladder = DEFAULT_DOCUMENT["ladder"][:1]
    mail = MailSettings(
        url=f"smtp://127.0.0.1:{port}",
        sender="Casework <casework@example.com>",
        per_connection=per_connection,
    )
    return Settings(sla={**DEFAULT_DOCUMENT, "clocks": clocks, "ladder": ladder}, mail=mail)


def _fill(engine: Engine, mails: int) -> None:
    now = engine.clock.now()
    template = engine.open_case(
        customer="C", channel="phone", category="other", summary="The technician did not come.",
        actor="agent", branch="Guangzhou", received_at=now - timedelta(hours=2),
    ).id  # fmt: skip
    add_open_cases(engine, template, mails - 1, "mail-")
    assert len(engine.process_due(now)) == mails


def _requeue(engine: Engine) -> None:
    with engine.db.begin() as conn:
        conn.execute(
            update(outbox_table).values(
                status="pending", attempts=0, next_attempt_at=engine.clock.now(),
                sent_at=None, message_id=None, lease_token=None, last_error=None,
            )
        )  # fmt: skip


def _deliver(engine: Engine, port: int, per_connection: int, mails: int) -> float:
    _requeue(engine)
    settings = replace(engine.settings.mail, per_connection=per_connection)
    deliverer = Deliverer(engine, SmtpTransport(settings), batch=200)
    start = time.perf_counter()
    result = deliverer.deliver_due()
    elapsed = time.perf_counter() - start
    assert result.sent == mails, result
    return mails / elapsed


def _floor(port: int, mails: int) -> float:
    message = EmailMessage()
    message["From"] = "casework@example.com"
    message["To"] = "store-supervisor@casework.invalid"
    message["Subject"] = "[casework] Level 1 (store supervisor): case 0123 overdue"
    message.set_content("x" * 1500)
    message.add_alternative("<p>" + "x" * 3000 + "</p>", subtype="html")
    start = time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as client:
        for _ in range(mails):
            client.send_message(message)
    return mails / (time.perf_counter() - start)


def run(backend: str, args: argparse.Namespace) -> dict[str, float]:
    """Measure one backend; the figures by name."""
    ctx = multiprocessing.get_context("spawn")
    port = free_port()
    ready, stop = ctx.Event(), ctx.Event()
    sink = ctx.Process(target=_sink, args=(port, ready, stop))
    sink.start()
    ready.wait(30)
    try:
        urls = sqlite_url() if backend == "sqlite" else postgres_url()
        with urls as url:
            clock = FixedClock(datetime.now(UTC).replace(microsecond=0))
            settings = _settings(port, args.per_connection)
            with Engine.open(url, clock=clock, config=settings) as engine:
                _fill(engine, args.mails)
                floor = single = pooled = 0.0
                for _ in range(args.rounds):  # interleaved, best of each: fair under noise
                    floor = max(floor, _floor(port, args.mails))
                    single = max(single, _deliver(engine, port, 1, args.mails))
                    pooled = max(pooled, _deliver(engine, port, args.per_connection, args.mails))
    finally:
        stop.set()
        sink.join(30)
    return {
        "mails": args.mails,
        "one_per_connection_per_s": single,
        "many_per_connection_per_s": pooled,
        "per_connection": args.per_connection,
        "smtplib_floor_per_s": floor,
        "ratio_to_floor": pooled / floor,
    }


def main() -> None:
    """Run the benchmark and print its figures."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--per-connection", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=2, help="Interleaved rounds; best kept.")
    args = parser.parse_args()
    configure_logging("warning")
    for backend in backends(args.backend):
        f = run(backend, args)
        rows = [
            ("(a) one mail per connection", f"{f['one_per_connection_per_s']:,.0f} mails/s"),
            (f"(b) {args.per_connection} per connection",
             f"{f['many_per_connection_per_s']:,.0f} mails/s (target >= 200)"),
            ("baseline: smtplib alone", f"{f['smtplib_floor_per_s']:,.0f} mails/s"),
            ("(b) / baseline", f"{f['ratio_to_floor']:.2f}"),
        ]  # fmt: skip
        report(f"Mail delivery on {backend}, {args.mails:,} mails", rows, f)


if __name__ == "__main__":
    main()
