"""Shared pieces of the ``casework`` commands: options, engine opening, output, errors."""

from __future__ import annotations

import functools
import gc
import json
import os
import re
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import structlog

from casework.workflow.bootstrap import DEFAULT_DB, engine_from, startup
from casework.workflow.cli.hints import worded
from casework.workflow.errors import CaseworkError, InvalidInput, StorageFailure
from casework.workflow.storage_boundary import storage_error_types, translated

if TYPE_CHECKING:
    from sqlalchemy import Engine as SAEngine

    from casework.workflow.display.zones import DisplayZone
    from casework.workflow.engine import Engine

WHOLE = click.IntRange(1, 2**31 - 1)
"""A count, limit, batch or id option: a whole number that fits every database's columns."""
F = TypeVar("F", bound=Callable[..., Any])
_INT = re.compile(r"-?[1-9][0-9]{0,17}|0")


class CaseworkGroup(click.Group):
    """The root command group: whatever goes wrong inside a command ends as one line.

    Casework and storage errors carry their own exit status; a closed output pipe ends
    the command quietly; anything unforeseen is one line with exit status 1 (its
    traceback goes to the log at debug level), never a traceback on the terminal.
    """

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent, **extra)
        except click.UsageError as err:
            usage_failed(err)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as err:
            usage_failed(err)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except handled() as err:
            fail_for(err)
        except BrokenPipeError:
            quiet_stdout()
            sys.exit(1)
        except ModuleNotFoundError as err:
            extra = EXTRAS.get((err.name or "").partition(".")[0])
            if extra is None:
                raise
            notes = [n for n in getattr(err, "__notes__", []) if n.startswith("command: ")]
            command = notes[0].removeprefix("command: ") if notes else ctx.invoked_subcommand
            fail(
                f"{command or 'this command'} needs {err.name}, which comes with "
                f"the {extra} extra: pip install 'casework[{extra}]'"
            )
        except Exception as err:
            structlog.get_logger("casework").debug("unexpected_error", exc_info=True)
            fail(
                f"unexpected {type(err).__name__}: {printable(str(err))} "
                "(--log-level debug shows where)",
                code=1,
            )


class CaseworkCommand(click.Command):
    """A command whose help ends with the values its options take and examples (from
    :mod:`casework.workflow.cli.examples`), and that names every missing required option at
    once rather than the first."""

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_ending(self, ctx, formatter)

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        given = list(args)
        try:
            return super().parse_args(ctx, args)
        except click.MissingParameter:
            missing = missing_options(self, ctx, given)
            if len(missing) > 1:
                raise click.UsageError(f"missing options: {', '.join(missing)}", ctx) from None
            raise


def help_ending(command: click.Command, ctx: click.Context, formatter: click.HelpFormatter) -> None:
    """Write the command's epilog, then its valid values and examples."""
    from casework.workflow.cli.examples import EXAMPLES, VALUES

    click.Command.format_epilog(command, ctx, formatter)
    path = " ".join(ctx.command_path.split()[1:])
    values = VALUES.get(path)
    if values is not None:
        with formatter.section("Valid values"):
            formatter.write_dl(values())
    examples = EXAMPLES.get(path)
    if examples:
        with formatter.section("Examples"):
            for line in examples:  # as they are: a command line is not wrapped
                formatter.write(f"{'':>{formatter.current_indent}}casework {line}\n")


def missing_options(command: click.Command, ctx: click.Context, args: list[str]) -> list[str]:
    """The required options ``args`` do not give (nor their environment variables)."""
    parser = command.make_parser(ctx)
    parser.ignore_unknown_options = True
    try:
        given, _, _ = parser.parse_args(args=list(args))
    except click.UsageError:
        return []
    missing = []
    for param in command.get_params(ctx):
        if not param.required or given.get(param.name or "") is not None:
            continue
        if param.resolve_envvar_value(ctx) is not None:
            continue
        missing.append(
            param.opts[0] if isinstance(param, click.Option) else param.human_readable_name
        )
    return missing


class CaseworkSubgroup(click.Group):
    """A group of commands (``outbox``, ``report``, ...): its commands are
    :class:`CaseworkCommand`, and its help ends the same way."""

    command_class = CaseworkCommand

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        help_ending(self, ctx, formatter)


EXTRAS = {
    "matplotlib": "reports",
    "cryptography": "signing",
    "aiosmtpd": "demo",
    "psycopg": "postgres",
    "fastapi": "server",
    "uvicorn": "server",
    "prometheus_client": "server",
}
"""The optional packages, each with the extra that installs it."""


def handled() -> tuple[type[Exception], ...]:
    """What a command turns into one line with the error's own exit status."""
    return (CaseworkError, *storage_error_types())


def fail_for(err: BaseException) -> NoReturn:
    """Exit with one line for a casework or storage error, at the error's exit status."""
    error = err if isinstance(err, CaseworkError) else translated(err)
    fail(worded(error), code=error.exit_status)


def usage_failed(err: click.UsageError) -> NoReturn:
    """A usage error in the one error style, with where to find help."""
    where = err.ctx.command_path if err.ctx is not None else "casework"
    fail(f"{err.format_message()} (see '{where} --help')", code=err.exit_code)


def quiet_stdout() -> None:
    """Point stdout at /dev/null: its reader went away, and the interpreter's last flush
    must not complain about it."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def printable(text: str) -> str:
    """``text`` on one line, with what a terminal cannot show escaped."""
    line = " ".join(text.split())
    return line.encode("utf-8", "backslashreplace").decode("utf-8")


def emit_json(document: Any) -> None:
    """Print one JSON document on stdout."""
    click.echo(json.dumps(document, ensure_ascii=False, indent=2))


def fail(message: str, code: int = 2) -> NoReturn:
    """Print one error line on stderr and exit with ``code``."""
    click.echo(f"casework: error: {printable(message)}", err=True)
    sys.exit(code)


def typed_text(value: str, what: str) -> str:
    """An argument as typed, refused if the command line's bytes were not UTF-8 (they
    arrive as lone surrogates, which no database or terminal takes)."""
    if any("\ud800" <= c <= "\udfff" for c in value):
        raise InvalidInput(f"{what} is not valid UTF-8", field=what.lower())
    return value


def parse_data(pairs: Sequence[str], option: str = "--data") -> dict[str, Any]:
    """``K=V`` pairs (given with ``option``) into a dict; a whole number stays a number,
    anything else is text."""
    data: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InvalidInput(f"{option} {pair!r} must look like key=value", field=option)
        data[key.strip()] = int(value) if _INT.fullmatch(value) else value
    return data


def _remember(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a session option on the root context, wherever on the line it was given;
    a log level takes effect at once."""
    if value is None or value is False or param.name is None:
        return value
    ctx.find_root().meta[f"casework.{param.name}"] = value
    if param.name == "tz":
        from casework.workflow.display.zones import zone_named

        try:
            zone_named(value, "--tz")
        except InvalidInput as err:
            raise click.BadParameter(str(err).removeprefix("--tz: ")) from None
    if param.name == "log_level":
        from casework.workflow.cli.logs import configure_logging

        try:
            configure_logging(value)
        except InvalidInput as err:
            raise click.BadParameter(str(err)) from None
    return value


def setting(name: str) -> Any:
    """A session option (``tz``, ``log_level``, ``verbose``) as given before or after the
    command, or ``None``."""
    return click.get_current_context().find_root().meta.get(f"casework.{name}")


def session_options(func: F) -> F:
    """Add ``--log-level``, ``--tz`` and ``--verbose``: accepted before the command or
    after it, kept for the whole run (see :func:`setting`)."""
    func = click.option(
        "-v", "--verbose", is_flag=True, default=False, expose_value=False,
        callback=_remember, help="Also print notes that are not warnings.",
    )(func)  # fmt: skip
    func = click.option(
        "--tz", default=None, metavar="ZONE", expose_value=False, callback=_remember,
        help="Show and read times in this zone (e.g. Asia/Shanghai). "
        "Default: $CASEWORK_TZ, else [display] timezone, else the system's.",
    )(func)  # fmt: skip
    return click.option(
        "--log-level", default=None, metavar="LEVEL", expose_value=False, callback=_remember,
        help="debug, info, warning (default) or error; log lines go to stderr.",
    )(func)  # fmt: skip


def database_options(func: F) -> F:
    """Add ``--db`` and ``--config`` to a command (they may also come before it), and
    the :func:`session_options`."""
    func = session_options(func)
    func = click.option(
        "--db-schema", default=None, metavar="NAME", expose_value=False, callback=_remember,
        help="PostgreSQL: keep casework's tables in this schema of the database, beside "
        "another application's. Default: $CASEWORK_DB_SCHEMA, else public.",
    )(func)  # fmt: skip
    func = click.option(
        "--db-table-prefix", default=None, metavar="PREFIX", expose_value=False,
        callback=_remember,
        help="Put casework's tables under this prefix (cw_: lower-case letters, digits, _), "
        "beside another application's same-named tables in one database. "
        "Default: $CASEWORK_DB_TABLE_PREFIX, else none.",
    )(func)  # fmt: skip
    func = click.option(
        "--read-db", default=None, metavar="URL", expose_value=False, callback=_remember,
        help="A hot standby for commands that only read (auditing, reports, list, show). "
        "Default: $CASEWORK_READ_DATABASE_URL, else --db.",
    )(func)  # fmt: skip
    func = click.option(
        "--config",
        "config_path",
        type=click.Path(dir_okay=False),
        default=None,
        help="Settings file (TOML). Default: $CASEWORK_CONFIG, else built-in defaults.",
    )(func)
    return click.option(
        "--db",
        "db_url",
        default=None,
        metavar="URL",
        help=f"Database URL. Default: $CASEWORK_DATABASE_URL, else {DEFAULT_DB}.",
    )(func)


def note(text: str, *, always: bool = True) -> None:
    """``casework: note: ...`` on stderr; ``always=False``: only under ``--verbose``."""
    if always or setting("verbose"):
        click.echo(f"casework: note: {printable(text)}", err=True)


def typed_time(
    text: str, what: str, engine: Engine | None = None, *, end_of_day: bool = False
) -> datetime:
    """A time a person typed: with an offset as it is, a naive time or a date in the
    display zone (``end_of_day``: a date means its end), with a note saying which zone
    was assumed."""
    from casework.workflow.display.times import read_time

    reading = read_time(text, what, display_zone(engine).zone, end_of_day=end_of_day)
    if reading.assumed:
        note(reading.assumed)
    return reading.moment


def zoned(header: str, zone: DisplayZone) -> str:
    """A table header for a column of local times: ``received (Asia/Shanghai)``."""
    return f"{header} ({zone.name})"


def display_zone(engine: Engine | None = None) -> DisplayZone:
    """The zone people read times in: ``--tz``, ``$CASEWORK_TZ``, the settings'
    ``[display] timezone`` (of ``engine``), else the system's."""
    from casework.workflow.display.zones import choose_zone

    configured = None if engine is None else engine.settings.display_timezone
    return choose_zone(setting("tz"), configured)


def actor_option(who: str) -> Callable[[F], F]:
    """Add a required ``--actor`` (``who`` does it), which ``$CASEWORK_ACTOR`` supplies."""
    return click.option(
        "--actor", required=True, envvar="CASEWORK_ACTOR",
        help=f"{who} (default: $CASEWORK_ACTOR).",
    )  # fmt: skip


def json_option(func: F) -> F:
    """Add ``--json``."""
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(func)


@contextmanager
def engine_for(
    db_url: str | None,
    config_path: str | None,
    *,
    read_only: bool = False,
    audit: bool = False,
    reads: bool = False,
) -> Iterator[Engine]:
    """Open the engine the options and environment name, and close it afterwards.

    ``read_only`` opens a connection the database refuses to write on and migrates
    nothing. Any write access that comes with the user or role anyway is noted on
    stderr by the auditors' commands (``audit``), by the others only under ``--verbose``.
    A command that only reads (``read_only``, or ``reads``) goes to the ``--read-db``
    standby where one is named, read-only.
    """
    from casework.storage.database import write_access

    given = arguments(db_url, config_path)
    url, read_only = startup(given, os.environ).opening(read_only, reads)
    try:
        engine = engine_from(
            given, os.environ, read_only=read_only, logger=structlog.get_logger("casework")
        )
    except StorageFailure as err:
        fail(f"cannot open database {_safe_url(url)}: {worded(err)}", code=err.exit_status)
    except InvalidInput as err:
        if err.field != "db":
            raise
        fail(f"cannot open database {_safe_url(url)}: {worded(err)}")
    except ModuleNotFoundError as err:
        fail(
            f"cannot open database {_safe_url(url)}: its driver {err.name} is not installed; "
            "for PostgreSQL install casework with the postgres extra: "
            "pip install 'casework[postgres]'"
        )
    started()
    if read_only:
        needless = write_access(engine.db)
        if needless:
            note(f"{needless}; auditing needs only read access", always=audit)
    try:
        yield engine
    finally:
        engine.close()


_QUIET_START: list[bool] = []
"""Holds one ``True`` while :func:`quiet_start` keeps the collector off."""


def quiet_start() -> None:
    """Start the process's command with the cyclic garbage collector off, until
    :func:`started`: importing and opening create objects that live as long as the
    process, which collections would walk over again and again (about a twentieth of
    ``fire``'s instructions, its exit's full collection another)."""
    gc.disable()
    _QUIET_START[:] = [True]


def started() -> None:
    """Start-up is over (the engine is open): what it made is kept out of every later
    collection (``gc.freeze``) and the collector runs again for the command's own work.
    Nothing happens where :func:`quiet_start` did not stop the collector (a command
    run in a caller's process leaves its collector alone)."""
    if _QUIET_START:
        _QUIET_START.clear()
        gc.freeze()
        gc.enable()


def arguments(db_url: str | None = None, config_path: str | None = None) -> dict[str, str | None]:
    """What the options say of the database and the settings (given before the command
    or after it), by the names :func:`casework.workflow.bootstrap.startup` reads; a
    database in memory is refused."""
    from casework.storage.database import is_in_memory

    root = click.get_current_context().find_root().params
    given = {
        "db_url": db_url or root.get("db_url"),
        "read_db": setting("read_db"),
        "config_path": config_path or root.get("config_path"),
        "db_schema": setting("db_schema"),
        "db_table_prefix": setting("db_table_prefix"),
    }
    url = startup(given, os.environ).db_url
    if is_in_memory(url):
        raise InvalidInput(
            f"{url} is a database in memory: it keeps nothing after this command ends; "
            "give a file (sqlite:///casework.db) or a server (only `casework demo` runs "
            "on a throwaway database)",
            field="db",
        )
    return given


@contextmanager
def opened(db_url: str | None) -> Iterator[tuple[str, SAEngine]]:
    """The named database as a SQLAlchemy engine (no casework engine: for ``migrate``),
    with its URL as it may be shown (no password); disposed of afterwards."""
    from casework.storage.database import make_engine

    start = startup(arguments(db_url), os.environ)
    db = make_engine(start.db_url, schema=start.db_schema, table_prefix=start.db_table_prefix)
    try:
        yield _safe_url(start.db_url), db
    finally:
        db.dispose()


def warn_unreachable(engine: Engine, owner: str) -> None:
    """Say on stderr, when the case is given to ``owner``, that the mail settings give
    that agent no address (only where they give agents addresses at all): the warning
    mail would be a dead letter at 3 a.m. otherwise."""
    mail = engine.settings.mail
    if mail.agent_domain is None and not mail.agents:
        return
    problem = mail.agent_problem(owner)
    if problem is not None:
        click.echo(f"casework: warning: {problem}", err=True)


def handle_errors(func: F) -> F:
    """Turn casework errors into one stderr line and exit status 2."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except handled() as err:
            fail_for(err)

    return wrapper  # type: ignore[return-value]


def _safe_url(url: str) -> str:
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: East Asian wide and full-width characters
    take two, combining marks none."""
    return sum(
        0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1
        for c in text
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """Print rows under a header, columns lined up by display width (Chinese counts two)."""
    widths = [
        max([display_width(h), *(display_width(r[i]) for r in rows)]) for i, h in enumerate(header)
    ]
    for line in (header, *rows):
        cells = (c + " " * (w - display_width(c)) for c, w in zip(line, widths, strict=True))
        click.echo("  ".join(cells).rstrip())
