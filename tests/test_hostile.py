"""Hostile input at the command line, the API and the configuration: refused precisely,
nothing written; text that looks like SQL or headers is stored as text."""

from __future__ import annotations

import contextlib
import json
import string
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from casework.workflow import CaseworkError, Engine, FixedClock
from casework.workflow.cli import main
from casework.workflow.config import settings_from_mapping
from casework.workflow.errors import ConfigError
from tests.support import START, open_sample, rows_at


@pytest.fixture
def cli_db(db_url: str) -> tuple[str, str]:
    """A database with one case; its URL and the case id."""
    with Engine.open(db_url, clock=FixedClock(START)) as engine:
        case_id = open_sample(engine)
    return db_url, case_id


OPEN = ["open", "--customer", "C1", "--channel", "phone", "--category", "other",
        "--summary", "s", "--actor", "li.na"]  # fmt: skip

# (name, arguments with {case} for the case id and {tmp} for a folder, error text)
CLI_CASES: list[tuple[str, list[str], str]] = [
    ("unknown case", ["fire", "nope", "apologise", "--actor", "a"], "no case 'nope'"),
    ("SQL in case id", ["fire", "x' OR '1'='1", "apologise", "--actor", "a"], "no case \"x' OR '1'='1\""),
    ("unknown event", ["fire", "{case}", "explode", "--actor", "a"], "complaint has no event 'explode'"),
    ("event with SQL", ["fire", "{case}", "note;DROP TABLE events", "--actor", "a"], "complaint has no event 'note;DROP TABLE events'"),
    ("system event by hand", ["fire", "{case}", "escalate", "--actor", "a"], "escalate"),
    ("empty actor", ["fire", "{case}", "apologise", "--actor", " "], "actor"),
    ("control char in actor", ["fire", "{case}", "apologise", "--actor", "a\x07b"], "control characters"),
    ("data without =", ["fire", "{case}", "contact", "--actor", "a", "--data", "oops"], "must look like key=value"),
    ("data key with space", ["fire", "{case}", "contact", "--actor", "a", "--data", "a b=1"], "must be a name"),
    ("data key SQL", ["fire", "{case}", "contact", "--actor", "a", "--data", "x';--=1"], "must be a name"),
    ("oversized note", ["fire", "{case}", "note", "--actor", "a", "--note", "x" * 4001], "limit is 4000"),
    ("--at in an unknown zone", ["fire", "{case}", "apologise", "--actor", "a", "--at", "2026-11-23T09:00:00", "--tz", "Asia/Nowhere"], "unknown time zone"),
    ("unparseable --at", ["fire", "{case}", "apologise", "--actor", "a", "--at", "tomorrow"], "--at"),
    ("--at before the case", ["fire", "{case}", "apologise", "--actor", "a", "--at", "2020-01-01T00:00:00Z"], "lies before the case's previous event"),
    ("--at far future", ["fire", "{case}", "apologise", "--actor", "a", "--at", "2999-01-01T00:00:00Z"], "future"),
    ("stale version", ["fire", "{case}", "apologise", "--actor", "a", "--expected-version", "9"], "expected version 9"),
    ("guard fails", ["fire", "{case}", "assign", "--actor", "a"], "condition new_owner_given failed"),
    ("unknown channel", [*OPEN[:4], "fax", *OPEN[5:]], "valid channel values"),
    ("channel with SQL", [*OPEN[:4], "phone'--", *OPEN[5:]], "valid channel values"),
    ("unknown category", [*OPEN[:6], "rude", *OPEN[7:]], "valid category values"),
    ("header injection in customer", ["open", "--customer", "X\r\nBcc: e@x.com", *OPEN[3:]], "control characters"),
    ("NUL in summary", [*OPEN[:8], "a\x00b", *OPEN[9:]], "control characters"),
    ("oversized summary", [*OPEN[:8], "x" * 5000, *OPEN[9:]], "summary"),
    ("unknown attribute", [*OPEN, "--attr", "colour=red"], "'colour'"),
    ("bad purchase date", [*OPEN, "--attr", "purchase_date=2026-13-01"], "date"),
    ("received in the future", [*OPEN, "--received-at", "2999-01-01T00:00:00Z"], "future"),
    ("received on no date", [*OPEN, "--received-at", "2026-02-30"], "not a date or time"),
    ("unknown priority", [*OPEN, "--priority", "p0"], "priority"),
    ("replay before the case", ["replay", "{case}", "--at", "2000-01-01T00:00:00Z"], "was not yet received"),
    ("export over an existing file", ["export", "--out", "{tmp}/exists.jsonl"], "exists; use --force"),
    ("export into a missing folder", ["export", "--out", "{tmp}/no/such/dir/x.jsonl"], "no folder"),
    ("export path traversal through a missing folder", ["export", "--out", "{tmp}/sub/../exists.jsonl"], "no folder"),
    ("export path traversal onto a file", ["export", "--out", "{tmp}/../{tmpname}/exists.jsonl"], "exists; use --force"),
    ("export backwards period", ["export", "--since", "2026-12-01T00:00:00Z", "--until", "2026-11-01T00:00:00Z"], "--until must be later"),
    ("report unknown case", ["report", "case", "nope", "--html", "{tmp}/r.html"], "no case 'nope'"),
    ("report two periods", ["report", "sla", "--from", "2026-11-01", "--month", "2026-11"], "one of --from"),
    ("report bad month", ["report", "sla", "--month", "2026-13"], "not a month"),
    ("report bad span", ["report", "sla", "--last", "7y"], "not a span"),
    ("retry unknown mail", ["outbox", "retry", "99"], "no outbox mail 99"),
    ("deliver to a URL with a password", ["deliver", "--smtp", "smtp://u:secret@host"], "no password in the URL"),
    ("deliver to http", ["deliver", "--smtp", "http://host"], "smtp://host"),
    ("checkpoint without a key", ["checkpoint"], "give --key FILE"),
    ("verify a missing export", ["verify", "--export", "{tmp}/none.jsonl"], "no export file"),
    # undecodable bytes on the command line arrive as lone surrogates
    ("invalid UTF-8 in a case id", ["fire", "{case}\udcff", "apologise", "--actor", "a"], "is not a case id"),
    ("invalid UTF-8 in an event", ["fire", "{case}", "apolog\udcfe", "--actor", "a"], "event is not valid UTF-8"),
    ("invalid UTF-8 in an actor", ["fire", "{case}", "apologise", "--actor", "li\udcff"], "actor is not valid UTF-8"),
    ("invalid UTF-8 in a note", ["fire", "{case}", "note", "--actor", "a", "--note", "x\udcff"], "note is not valid UTF-8"),
    ("invalid UTF-8 in data", ["fire", "{case}", "contact", "--actor", "a", "--data", "k=\udcff"], "not valid UTF-8"),
    ("invalid UTF-8 in a customer", ["open", "--customer", "C\udcff", *OPEN[3:]], "customer is not valid UTF-8"),
    ("invalid UTF-8 in show", ["show", "\udcff"], "is not a case id"),
    ("year 1 --at", ["fire", "{case}", "apologise", "--actor", "a", "--at", "0001-01-01T00:00:00+08:00"], "outside the years"),
    ("year 9999 --at", ["fire", "{case}", "apologise", "--actor", "a", "--at", "9999-12-31T23:00:00-05:00"], "outside the years"),
    ("year 1 --received-at", [*OPEN, "--received-at", "0001-01-01T00:00:00+08:00"], "outside the years"),
    ("year 9999 --now", ["tick", "--now", "9999-12-31T23:00:00-05:00"], "outside the years"),
    ("year 1 --since", ["export", "--since", "0001-01-01T00:00:00+08:00"], "outside the years"),
    ("year 9999 replay --at", ["replay", "{case}", "--at", "9999-12-31T23:00:00-05:00"], "outside the years"),
    ("--now two days ahead", ["tick", "--now", "2999-01-01T00:00:00Z"], "lies in the future"),
    ("--limit beyond 64 bits", ["list", "--limit", "99999999999999999999999"], "--limit"),
    ("--batch beyond 64 bits", ["tick", "--batch", "99999999999999999999999"], "--batch"),
    ("--expected-version beyond 64 bits", ["fire", "{case}", "apologise", "--actor", "a", "--expected-version", "99999999999999999999999"], "--expected-version"),
    ("retry beyond 64 bits", ["outbox", "retry", "99999999999999999999"], "MAIL_ID"),
    ("bogus --log-level", ["--log-level", "bogus", "list"], "unknown log level 'bogus'"),
    ("--out under a file", ["export", "--out", "{tmp}/exists.jsonl/x.jsonl"], "no folder"),
    ("malformed --db", ["--db", "postgresql://x@host:port/db", "list"], "cannot parse the URL"),
    ("in-memory --db", ["--db", "sqlite://", *OPEN], "database in memory"),
    ("owner that is an address", [*OPEN[:-1], "x@evil.example"], "not a mail address"),
    ("assign to an address", ["fire", "{case}", "assign", "--actor", "a", "--data", "to=y@evil.example"], "not a mail address"),
    ("assign with a header", ["fire", "{case}", "assign", "--actor", "a", "--data", "to=x@example.com\nBcc: spy@evil.example"], "to"),
    ("assign too long", ["fire", "{case}", "assign", "--actor", "a", "--data", "to=" + "x" * 300], "limit is 100"),
    ("attach an endless file", ["attach", "{case}", "/dev/zero", "--kind", "photo", "--actor", "a"], "/dev/zero is larger than"),
    ("attach a right-to-left override", ["attach", "{case}", "{tmp}/photo\u202egpj.exe", "--kind", "photo", "--actor", "a"], "bidirectional"),
    ("checkpoint with an endless key", ["checkpoint", "--key", "/dev/zero"], "/dev/zero"),
    ("binary --config", ["--config", "{tmp}/binary.bin", "list"], "not a TOML text file"),
    ("endless --config", ["--config", "/dev/zero", "list"], "/dev/zero is larger than"),
    ("binary --policy", ["simulate", "--policy", "{tmp}/binary.bin", "--month", "2026-11"], "not a TOML text file"),
    ("jobs import beyond 64 bits", ["jobs", "import", "{tmp}/jobs.csv"], "jobs must be a whole number from 1 to"),
    ("jobs import binary", ["jobs", "import", "{tmp}/binary.bin"], "binary.bin"),
    ("jobs add a right-to-left branch", ["jobs", "add", "--kind", "repair", "--branch", "B\u202eA", "--at", "2026-11-01"], "branch contains bidirectional"),
    ("jobs import endless", ["jobs", "import", "/dev/zero"], "/dev/zero is larger than"),
    ("tokens revoke invalid UTF-8", ["tokens", "revoke", "tok\udcff"], "TOKEN_ID is not valid UTF-8"),
    ("report month 9999-12", ["report", "sla", "--month", "9999-12"], "outside the years"),
    ("report to 9999-12-31", ["report", "sla", "--from", "2026-11-01", "--to", "9999-12-31"], "outside the years"),
    ("oversized --tz", ["list", "--tz", "A" * 5000], "unknown time zone"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "error"), [pytest.param(a, e, id=n) for n, a, e in CLI_CASES])
def test_hostile_command_lines_are_refused_with_one_line_and_change_nothing(
    cli_db: tuple[str, str], tmp_path: Path, args: list[str], error: str
) -> None:
    """Exit 2, the error named on one stderr line, every table as it was, no file left."""
    url, case_id = cli_db
    (tmp_path / "exists.jsonl").write_text("keep")
    (tmp_path / "binary.bin").write_bytes(b"\x7fELF\x02\x01\x00\xff\xfe" * 10)
    (tmp_path / "jobs.csv").write_text(f"kind,branch,done_at,jobs\nrepair,B,2026-11-01,{2**63}\n")
    (tmp_path / "photo\u202egpj.exe").write_bytes(b"MZ")
    before = rows_at(url)
    files = sorted(tmp_path.rglob("*"))
    argv = [
        a.replace("{case}", case_id)
        .replace("{tmpname}", tmp_path.name)
        .replace("{tmp}", str(tmp_path))
        for a in args
    ]
    result = CliRunner().invoke(main, ["--db", url, *argv], env={"CASEWORK_SIGNING_KEY": ""})
    assert result.exit_code == 2, result.output
    lines = [line for line in result.stderr.splitlines() if line.startswith("casework: error")]
    assert len(lines) == 1, result.stderr
    assert error in lines[0]
    assert "secret" not in result.output
    assert rows_at(url) == before
    assert sorted(tmp_path.rglob("*")) == files
    assert (tmp_path / "exists.jsonl").read_text() == "keep"


SQLISH = "'; DROP TABLE events; -- \" OR 1=1 /* ` \\ %s ? $1 ${x} {{x}} <script>"


def test_sql_and_markup_metacharacters_are_stored_as_text(db_url: str) -> None:
    """Every text field keeps quotes, comments and placeholders verbatim; the chain holds."""
    clock = FixedClock(START)
    with Engine.open(db_url, clock=clock) as engine:
        case = engine.open_case(
            customer=f"C {SQLISH}", channel="phone", category="other", summary=SQLISH,
            contact=SQLISH, branch=f"B {SQLISH}", actor=f"li.na {SQLISH}"[:60],
            attributes={"product": SQLISH, "brand": SQLISH, "order_number": SQLISH},
        )  # fmt: skip
        clock.advance(timedelta(minutes=1))
        engine.fire(case.id, "note", actor="a", note=SQLISH, data={"kind": SQLISH})
        stored = engine.get(case.id)
        assert stored.summary == SQLISH
        assert stored.customer == f"C {SQLISH}"
        assert stored.attributes["product"] == SQLISH
        assert engine.history(case.id)[-1].data["note"] == SQLISH
        assert engine.verify().ok
        assert len(engine.list()) == 1


_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=40)
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=20,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    event=st.one_of(st.sampled_from(["apologise", "note", "contact", "assign", "resolve",
                                     "wait", "resume", "follow_up", "withdraw"]), _text),
    data=st.dictionaries(_text, _json, max_size=5),
    note=st.one_of(st.none(), _text),
    actor=_text,
    minutes=st.integers(min_value=-10_000, max_value=10_000),
)  # fmt: skip
def test_fuzzed_events_either_apply_or_raise_a_casework_error(
    engine: Engine, event: str, data: dict[str, Any], note: str | None, actor: str, minutes: int
) -> None:
    """Whatever the event name, payload, text or time: applied, or refused with a
    CaseworkError, and every chain still verifies."""
    case_id = open_sample(engine, received_at=START - timedelta(days=10))
    at = START + timedelta(minutes=minutes)
    with contextlib.suppress(CaseworkError):
        engine.fire(case_id, event, actor=actor or "x", data=data, note=note, at=at)
    report = engine.verify(case_id)
    assert report.ok, report.problems


_toml_value = st.one_of(
    st.integers(), st.booleans(), _text, st.lists(_text, max_size=3),
    st.dictionaries(st.sampled_from(["*", "x", "1", "warning"]), _text, max_size=2),
)  # fmt: skip
_keys = st.sampled_from(["channels", "categories", "priorities", "max_note_chars", "url",
                         "sender", "language", "quiet_hours", "agents", "bogus", "timeout_s",
                         "runs_in", "within_s", "ladder", "calendars", "clocks", "holidays"])  # fmt: skip


@settings(max_examples=200, deadline=None)
@example(document={"sla": {"calendars": 0}})  # once crashed the loader
@given(
    document=st.dictionaries(
        st.sampled_from(["intake", "limits", "mail", "sla", "other"]),
        st.dictionaries(_keys, _toml_value, max_size=4),
        max_size=3,
    )
)
def test_fuzzed_configuration_loads_or_names_its_mistake(document: dict[str, Any]) -> None:
    """A configuration either loads or raises ConfigError naming the file; nothing else."""
    try:
        settings_from_mapping(document, "fuzz.toml")
    except ConfigError as err:
        message = str(err)
    else:
        return
    assert message.startswith("fuzz.toml")


def test_fuzzed_case_text_never_breaks_a_mail_header(tmp_path: Path) -> None:
    """Every printable and control character in a summary stays out of the headers."""
    from casework.workflow.mail.render import MailWriter, header_text, sample_mail
    from casework.workflow.mail.settings import MailSettings

    nasty = string.printable + "\x00\x0b\x0c\u2028\u2029\x85" + "头\r\nBcc: x@y\r\n\r\nbody"
    assert "\n" not in header_text(nasty)
    assert "\r" not in header_text(nasty)
    mail = sample_mail()
    body = {**mail.body, "summary": nasty, "customer": nasty, "branch": nasty}
    from dataclasses import replace

    rendered = MailWriter(MailSettings()).notice(replace(mail, body=body), [])
    message = MailWriter(MailSettings()).message(rendered, START)
    head = message.split(b"\r\n\r\n", 1)[0]
    # no Bcc header: the words may only appear inside the Subject's encoded words
    assert not any(line.lower().startswith(b"bcc") for line in head.split(b"\r\n"))
    assert b"\r\nBcc:" not in head
    assert all(line[:1] in b" \t" or b":" in line for line in head.split(b"\r\n"))
    assert json.dumps(rendered.subject)


@pytest.mark.parametrize(
    ("toml", "error"),
    [
        ("[limits]\nfuture_skew_s = 100000000000000000000\n", "limits.future_skew_s"),
        ("[mail]\nbackoff_s = 1e300\n", "mail.backoff_s"),
        ("[mail]\nmax_attempts = 100000000000000000000\n", "mail.max_attempts"),
        ("[mail]\nlease_s = 1e300\n", "mail.lease_s"),
        ("[mail]\nmax_age_s = -1\n", "mail.max_age_s"),
        ("[limits]\nmax_text_chars = 5000\n", "limits.max_text_chars"),
    ],
)
def test_configuration_numbers_beyond_sane_bounds_are_refused_at_load(
    cli_db: tuple[str, str], tmp_path: Path, toml: str, error: str
) -> None:
    """Accepted once, such numbers crashed `deliver` later with mails left `sending`."""
    url, _ = cli_db
    config = tmp_path / "casework.toml"
    config.write_text(toml)
    before = rows_at(url)
    result = CliRunner().invoke(main, ["--db", url, "--config", str(config), "deliver"])
    assert result.exit_code == 2, result.output
    assert result.stderr.count("\n") == 1
    assert f"{config}: {error}" in result.stderr
    assert rows_at(url) == before


def test_a_checkpoint_of_the_future_is_refused(cli_db: tuple[str, str], tmp_path: Path) -> None:
    """It would make every later write look like tampering."""
    url, _ = cli_db
    key = tmp_path / "k"
    assert CliRunner().invoke(main, ["keys", "generate", "--key", str(key)]).exit_code == 0
    result = CliRunner().invoke(
        main, ["--db", url, "checkpoint", "--key", str(key), "--at", "2999-01-01T00:00:00Z"]
    )
    assert result.exit_code == 2
    assert "lies in the future" in result.stderr


def test_a_new_sqlite_database_is_private(tmp_path: Path) -> None:
    """It holds personal data: 0600, and so are its -wal and -shm files, whatever the umask."""
    import os
    import stat

    path = tmp_path / "new.db"
    old = os.umask(0o022)
    try:
        with Engine.open(f"sqlite:///{path}", clock=FixedClock(START)) as engine:
            open_sample(engine)
            files = sorted(tmp_path.glob("new.db*"))
            modes = {f.name: stat.S_IMODE(f.stat().st_mode) for f in files}
    finally:
        os.umask(old)
    assert "new.db-wal" in modes
    assert set(modes.values()) == {0o600}, modes
