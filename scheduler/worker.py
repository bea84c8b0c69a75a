"""The worker: sleeps until the next deadline falls due, fires it, sleeps again.

APScheduler 3 provides the timer (an in-memory job store: the truth lives in our
tables). After every wake the job is re-armed for the earliest pending deadline, or
for the safety poll if that comes first. A deadline this process plans earlier than
the armed one re-arms it at once; the poll finds those that other processes plan. On
start the first wake catches up on everything that fell due while no worker ran; each
event records how late it was.

With a :class:`~casework.scheduler.mail.delivery.Deliverer` the worker also sends the outbox: a
second job runs a delivery as soon as a wake queued mails, when a retry falls due, and
at every safety poll (which also finds mails other processes queued). With a
:class:`~casework.scheduler.webhooks.delivery.WebhookDeliverer` a third job, on a thread of its
own, sends the webhook deliveries the same way: a slow receiver never holds a mail.
With a :class:`~casework.scheduler.notify.delivery.NotifyDeliverer` a fourth job sends the
customers' notifications (mail and text messages) on a thread of its own too.
Every wake records the worker's heartbeat, which ``/readyz`` reads.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from casework.scheduler.engine_api import EngineApi
from casework.scheduler.mail.delivery import Deliverer
from casework.scheduler.notify.delivery import NotifyDeliverer
from casework.scheduler.webhooks.delivery import WebhookDeliverer
from casework.workflow import CaseworkError, ClockAhead
from casework.workflow.logs import library_logger
from casework.workflow.reports.daily import next_run, queue_daily_reports

JOB_ID = "casework-wake"
DELIVER_ID = "casework-deliver"
WEBHOOKS_ID = "casework-webhooks"
NOTIFY_ID = "casework-notify"
RETENTION_ID = "casework-retention"
RETENTION_EVERY = timedelta(days=1)
DAILY_ID = "casework-daily-report"
WAKE_BUDGET_S = 1.0
"""How long one wake fires a backlog before it lets other work in."""


class Worker:
    """Fires due deadlines of one engine on time until stopped."""

    def __init__(
        self,
        engine: EngineApi,
        *,
        poll_s: float = 1.0,
        batch: int = 200,
        deliverer: Deliverer | None = None,
        webhooks: WebhookDeliverer | None = None,
        notifications: NotifyDeliverer | None = None,
        logger: Any = None,
        listen: bool = True,
    ) -> None:
        """``listen``: on PostgreSQL, hear other processes' new deadlines at once
        (``LISTEN``) rather than at the next safety poll."""
        if poll_s <= 0:
            raise ValueError("poll_s must be positive")
        self.engine = engine
        self.poll = timedelta(seconds=poll_s)
        self.batch = batch
        self.fired = 0
        self.delivered = 0
        self.deliverer = deliverer
        self.webhooks = webhooks
        self.name = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"[:100]
        self.started_at = engine.clock.now()
        self.notifications = notifications
        senders = ((DELIVER_ID, deliverer), (WEBHOOKS_ID, webhooks), (NOTIFY_ID, notifications))
        self._senders: dict[str, Deliverer | WebhookDeliverer | NotifyDeliverer] = {
            job: sender for job, sender in senders if sender is not None
        }
        self._delivering = {job: threading.Event() for job in self._senders}
        self._log = logger if logger is not None else library_logger()
        self._scheduler = BackgroundScheduler(timezone=UTC)
        self._stopped = threading.Event()
        self._arming = threading.Lock()
        self._running: dict[str, threading.Lock] = {}
        self._armed_for: datetime | None = None
        self._listen = listen
        self._listener: Any = None
        engine.on_deadline_planned(self._earlier)

    def wake(self) -> None:
        """Fire what is due, then arm the next wake."""
        try:
            self.engine.heartbeat(self.name, self.started_at)
            fired = self._fire_for_a_while()
            self.fired += len(fired)
            if fired:  # one line a wake; the engine logs each deadline_fired
                self._log.info(
                    "deadlines_processed",
                    count=len(fired),
                    max_late_by_s=round(max(f.late_by for f in fired).total_seconds(), 3),
                )
                for job, busy in self._delivering.items():
                    if not busy.is_set():
                        self._arm_delivery(job, self.engine.clock.now())
        except ClockAhead as err:  # nothing fires until the host's clock is set right
            self._log.error("clock_ahead", error=str(err))
        except Exception as err:  # the worker must outlive a failed batch; logged, retried
            self._log.exception("wake_failed", error_type=type(err).__name__, error=str(err))
        finally:
            self._arm()

    def _fire_for_a_while(self) -> list[Any]:
        """Fire due batches for up to :data:`WAKE_BUDGET_S`: a backlog (after downtime)
        goes on at the next wake, at once, so that stop(), deliveries and heartbeats
        wait for a second of it, not all of it."""
        fired: list[Any] = []
        until = time.monotonic() + WAKE_BUDGET_S
        while not self._stopped.is_set():
            done = self.engine.process_due(batch=self.batch, max_batches=1)
            fired += done
            if len(done) < self.batch or time.monotonic() > until:
                return fired
        return fired

    def deliver(self) -> None:
        """Send the due outbox mails and webhooks (one after the other, here), then arm
        the next deliveries."""
        for job in self._senders:
            self._deliver(job)

    def _deliver(self, job: str) -> None:
        """Send what one sender (mail or webhooks) has due, then arm its next run."""
        sender, busy = self._senders[job], self._delivering[job]
        busy.set()
        try:
            sent = sender.deliver_due().sent
            with self._arming:
                self.delivered += sent
        except Exception as err:  # logged; its rows are claimed again later
            self._log.exception(
                "delivery_failed", job=job, error_type=type(err).__name__, error=str(err)
            )
        finally:
            busy.clear()
            self._arm_delivery(job)

    def _arm_delivery(self, job: str, at: datetime | None = None) -> None:
        """Run the sender at ``at`` (default: when its next row falls due), or when its
        pause ends if that is later (its server, or every webhook receiver, was out of
        reach)."""
        now = self.engine.clock.now()
        sender = self._senders[job]
        if at is None:
            at = self._bounded(now, self._asked(sender.outbox.next_attempt))
        ends = None if isinstance(sender, NotifyDeliverer) else sender.pause_ends(now)
        self._schedule(job, lambda: self._deliver(job), at if ends is None else max(at, ends))

    def next_wake(self, now: datetime) -> datetime:
        """When to wake next: the earliest pending deadline, or the safety poll."""
        return self._bounded(now, self._asked(self.engine.next_due))

    def _asked(self, when: Callable[[], datetime | None]) -> datetime | None:
        """What ``when`` says is next, or ``None`` (the safety poll) when the database
        cannot answer: a worker that stopped arming would never wake again after a
        failover."""
        try:
            return when()
        except CaseworkError as err:
            self._log.warning("next_time_failed", error_type=type(err).__name__, error=str(err))
            return None

    def _bounded(self, now: datetime, due: datetime | None) -> datetime:
        """``due``, but not before ``now`` nor after the safety poll."""
        poll_at = now + self.poll
        return poll_at if due is None else max(now, min(due, poll_at))

    def _earlier(self, due_at: datetime) -> None:
        """This process planned a deadline: wake for it if it is earlier than armed."""
        with self._arming:
            armed = self._armed_for
        if armed is None or due_at < armed:
            self._arm(due_at)

    def _arm(self, at: datetime | None = None) -> None:
        when = self.next_wake(self.engine.clock.now()) if at is None else at
        self._schedule(JOB_ID, self.wake, when)

    def _schedule(self, job_id: str, func: Any, when: datetime) -> None:
        """Run ``func`` at ``when`` (replacing the job's previous time); not after stop().

        A job may be armed again while it still runs (a wake that left a backlog arms
        the next at once; a wake arms a delivery that is finishing). APScheduler drops a
        date job whose run it skips for a running instance, so a second instance is let
        in and waits for the first to end: a job is never lost, never runs twice at once.
        """
        with self._arming:  # never while stop() shuts the scheduler down
            if self._stopped.is_set():
                return
            if job_id == JOB_ID:
                self._armed_for = when
            self._scheduler.add_job(
                self._one_at_a_time,
                DateTrigger(run_date=when, timezone=UTC),
                args=(self._running.setdefault(job_id, threading.Lock()), func),
                id=job_id,
                replace_existing=True,
                misfire_grace_time=None,
                coalesce=True,
                max_instances=2,
            )

    def _one_at_a_time(self, running: threading.Lock, func: Callable[[], object]) -> None:
        """Run ``func`` once the job's instance before it has ended (not after stop())."""
        with running:
            if not self._stopped.is_set():
                func()

    def start(self) -> None:
        """Start the timer thread; the first wake happens at once (the catch-up)."""
        self._log.info("worker_started", poll_s=self.poll.total_seconds(), batch=self.batch)
        self._scheduler.start()
        self._schedule(JOB_ID, self.wake, datetime.now(UTC))
        for job in self._senders:
            self._schedule(job, lambda job=job: self._deliver(job), datetime.now(UTC))
        self._schedule(RETENTION_ID, self.retain, datetime.now(UTC))
        if self.engine.settings.reports.daily.enabled:
            self._schedule(DAILY_ID, self.daily_report, datetime.now(UTC))
        if self._listen:
            self._listener = self.engine.context.store.deadlines.listen(
                self._earlier, self._listen_failed
            )

    @property
    def listening(self) -> bool:
        """Whether it hears other processes' new deadlines as they are planned."""
        return self._listener is not None and self._listener.listening.is_set()

    def _listen_failed(self, err: Exception) -> None:
        self._log.warning("listen_failed", error_type=type(err).__name__, error=str(err))

    def retain(self) -> None:
        """Erase the customers ``[privacy] erase_after_days`` makes due (if it is set) and
        complete a compaction of the database files that erasures left pending, then
        again in a day (every worker does; a customer erased by one is skipped by the
        others)."""
        try:
            if self.engine.settings.erase_after is None:
                summary = self.engine.finish_erasure()
            else:  # which completes a pending compaction too
                summary = self.engine.erase_due()
                if summary["customers"]:
                    self._log.info(
                        "retention_erased",
                        customers=summary["customers"],
                        cases=len(summary["cases"]),
                    )
            if summary["compaction_pending"] is not None:
                self._log.warning("erasure_compaction_pending", since=summary["compaction_pending"])
        except Exception as err:  # logged; tried again tomorrow
            self._log.exception("retention_failed", error_type=type(err).__name__, error=str(err))
        finally:
            self._schedule(RETENTION_ID, self.retain, datetime.now(UTC) + RETENTION_EVERY)

    def daily_report(self) -> None:
        """Queue the daily reports of returns, exchanges and complaints due now
        (``[reports.daily]``: each once per day, however many workers run), then again
        at the next report's local time."""
        try:
            keys = queue_daily_reports(self.engine.context)
            if keys:
                self._log.info("daily_reports_due", keys=keys)
                for job, busy in self._delivering.items():
                    if job == DELIVER_ID and not busy.is_set():
                        self._arm_delivery(job, self.engine.clock.now())
        except Exception as err:  # logged; tried again at the next report's time
            self._log.exception(
                "daily_report_failed", error_type=type(err).__name__, error=str(err)
            )
        finally:
            now = self.engine.clock.now()
            wait = max(next_run(self.engine.context, now) - now, timedelta(seconds=1))
            self._schedule(DAILY_ID, self.daily_report, datetime.now(UTC) + wait)

    def stop(self) -> None:
        """Stop after the batch under way, if any."""
        if self._listener is not None:
            self._listener.stop()
        with self._arming:
            self._stopped.set()
        self._scheduler.shutdown(wait=True)
        self._log.info("worker_stopped", fired=self.fired, delivered=self.delivered)
