"""The ``casework`` command: the contract other programs rely on.

The database comes from ``--db URL``, else ``CASEWORK_DATABASE_URL``, else
``sqlite:///casework.db``; settings from ``--config FILE``, else ``CASEWORK_CONFIG``,
else built-in defaults. ``--json`` prints one JSON document on stdout and nothing
else. Errors are one line on stderr; exit status 2 for bad input, 1 for a failed
check, 0 for success.

This package is the composition root: the only code that imports ``workflow``,
``machines``, ``storage`` and ``scheduler`` alike. Each command lives in the module
:data:`COMMANDS` names and is imported only when it runs, so ``casework --help`` and
``casework fire`` pay for nothing they do not use.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Sequence
from typing import Any

import click

from casework.workflow.cli.support import (
    CaseworkGroup,
    database_options,
    help_ending,
    quiet_start,
    setting,
)

COMMANDS: dict[str, tuple[str, str]] = {
    "attach": ("evidence:attach_command", "Attach a file to a case as evidence."),
    "checkpoint": ("signing:checkpoint_command", "Sign a statement of the whole history."),
    "deliver": ("deliver:deliver_command", "Send every due mail and webhook once, then exit."),
    "demo": ("demo:demo_command", "A tour of one complaint on a throwaway database."),
    "erase": ("privacy:erase_command", "Forget a customer's personal data; history stays."),
    "export": ("export:export_command", "Write the events with their hashes (for auditors)."),
    "fire": ("cases:fire_command", "Apply an event to a case."),
    "history": ("cases:history_command", "The events of a case, oldest first."),
    "jobs": ("partners:jobs_group", "Dispatched jobs: record or import them (CSV)."),
    "keys": ("signing:keys_group", "The Ed25519 keys that sign and verify checkpoints."),
    "list": ("cases:list_command", "List cases (--overdue: who is late)."),
    "machines": ("machines:machines_command", "The registered machines, states and events."),
    "migrate": ("database:migrate_command", "Bring the database schema up to date."),
    "open": ("cases:open_command", "Open a case; prints its id."),
    "outbox": ("outbox:outbox_group", "The escalation mails: status, attempts, errors."),
    "partners": ("partners:partners_group", "Installers, repairers, manufacturers."),
    "reclassify": ("sla:reclassify_command", "Change a case's priority, category, channel, tier."),
    "related": ("relations:related_command", "The cases a case is linked to or merged with."),
    "replan": ("sla:replan_command", "Move a case to the configured SLA policy."),
    "replay": ("cases:replay_command", "Rebuild a case's state from its history alone."),
    "report": ("reports:report_group", "Reports for auditors and the business (HTML, JSON)."),
    "serve": ("serve:serve_command", "Serve the HTTP API and web console (server extra)."),
    "show": ("cases:show_command", "Show a case with its deadlines."),
    "simulate": ("simulate:simulate_command", "What a proposed SLA policy would have done."),
    "sla": ("sla:sla_group", "SLA clocks of a case."),
    "survey-link": ("survey:survey_link_command", "The customer's link to status and survey."),
    "tick": ("sla:tick_command", "Process every deadline due now once, then exit."),
    "tokens": ("tokens:tokens_group", "Bearer tokens of the HTTP API: create, list, revoke."),
    "verify": ("verify:verify_command", "Check every hash chain and replay (exit 1 if not)."),
    "webhooks": ("webhooks:webhooks_group", "Webhook subscriptions and their deliveries."),
    "worker": ("worker:worker_command", "Run the SLA scheduler, mail and webhook delivery."),
}
"""Each command: where it lives (module in this package, attribute) and its summary."""


class LazyGroup(CaseworkGroup):
    """The root group: lists commands from :data:`COMMANDS`, imports one only to run it."""

    def main(self, args: Sequence[str] | None = None, *rest: Any, **extra: Any) -> Any:
        if args is None:  # the process's own command line, not a caller's in-process run
            quiet_start()
        return super().main(args, *rest, **extra)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        spec = COMMANDS.get(cmd_name)
        if spec is None:
            return None
        module, _, attribute = spec[0].partition(":")
        try:
            loaded = importlib.import_module(f"casework.workflow.cli.{module}")
        except ModuleNotFoundError as err:
            err.add_note(f"command: {cmd_name}")  # whose extra is missing, for the one line
            raise
        command = getattr(loaded, attribute)
        assert isinstance(command, click.Command)
        return command

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_ending(self, ctx, formatter)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        with formatter.section("Commands"):
            formatter.write_dl([(name, COMMANDS[name][1]) for name in self.list_commands(ctx)])


@click.group(
    cls=LazyGroup,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog="Each command has its own --help.",
)
@database_options
@click.version_option(package_name="casework")
def main(db_url: str | None, config_path: str | None) -> None:
    """casework: customer complaints as persisted state machines with a tamper-evident history.

    Every case runs through a versioned state machine; every event is stored in a
    hash chain that `casework verify` checks and `casework replay` rebuilds.
    """
    from casework.workflow.cli.logs import configure_logging

    configure_logging(setting("log_level") or os.environ.get("CASEWORK_LOG_LEVEL", "warning"))
