"""Exports of the history for auditors: every event with its hashes, streamed.

Format ``casework-export`` version 2 (version 1 is still read). JSON Lines (UTF-8, one
object a line) or CSV with the same fields as columns; each record names its kind in
``record``:

- ``header`` (first): ``format``, ``version``, ``event_format`` (the hash format of
  :mod:`casework.storage.chain`), ``exported_at``, ``filters`` (``since``, ``until``, ``case``:
  what was asked for) and ``policies`` (every stored SLA policy document by version,
  so the clocks can be replayed without the database);
- ``event``, one per event, ordered by case id (byte order) and then ``seq``:
  ``case_id``, ``seq``, ``event``, ``from_state``, ``to_state``, ``actor``,
  ``occurred_at``, ``recorded_at``, ``data`` (the event data as its canonical JSON:
  an object in JSON Lines, its text in CSV), ``prev_hash``, ``hash``, the case's
  ``machine`` and ``machine_version``, ``v`` (the event's hash format: 2 for histories
  that hold personal data only as commitments) and, on the opening event of such a
  history, ``personal``: the values its commitments stand for by field, ``[erased]``
  where the customer was erased (``export --redact`` leaves ``personal`` out: the file
  still verifies, since no hash covers it);
- ``end`` (last): ``cases``, ``events`` and ``digest``: the SHA-256 of one line per
  case, in order, of ``case_id seq hash lines`` (space-separated, each line ending in a
  line feed): ``seq`` and ``hash`` of its last exported event, and ``lines`` the
  SHA-256 of what no event hash covers in each of its event records, one canonical
  JSON array ``[machine, machine_version, v, personal]`` and a line feed per event
  (``personal`` ``null`` where the record has none). Each chain's last hash commits to
  every event before it, so the digest commits to every field of every record. (In
  version 1 a case's line was ``case_id seq hash``: the personal values and the
  machine fields were outside the digest, and so outside a signature.) A file
  without it was cut short.
  With ``export --sign KEY`` it also holds ``header_sha256`` (the SHA-256 of the
  header's fields as canonical JSON) and ``signature`` (``key_id`` and ``value``: an
  Ed25519 signature over the canonical JSON of :func:`end_statement`).

What an unsigned export proves: every event in it is as it was hashed and every chain
links; it cannot prove that it is whole, since anyone who removes a case, a case's
tail or the header's filters can recompute the ``end`` record. A signed export binds
the header (its filters and policy documents), the counts, every case's head and every
field of every record (personal values and machine versions included) to a key the
editor does not hold: ``verify --export FILE --keyring RING`` checks it. A signed
export of version 1 still verifies, and the check says that its signature does not
cover those fields: export it again to have them covered.

In JSON Lines, ``data`` is written byte for byte as the canonical JSON that was
hashed; a tool that rewrites the file should keep it so (a reformatted one is still
accepted, at the cost of re-encoding it).

In CSV, a first line names the columns (``record`` first, then the event fields, then
``machine`` and ``machine_version``); the ``header`` and ``end`` records carry their
fields as a JSON object in the ``data`` column. ``--since``/``--until`` select events
by ``occurred_at`` (from the first, inclusive, to the second, exclusive); a case's
events in such an export may start after its first event, and its chain is then
checked from there.
"""

from __future__ import annotations

import csv
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import IO, Any

import orjson

from casework.storage import canonical_json, iso
from casework.storage.chain import PERSONAL_FORMAT
from casework.storage.personal_sql import ERASED_TEXT
from casework.storage.port import Store
from casework.workflow.privacy.commitments import commitments

FORMAT = "casework-export"
VERSION = 2
READ_VERSIONS = (1, 2)
"""Version 1's digest (and signature) left each record's personal values, machine and
machine version out; it is still read, and says so."""
FORMATS = ("jsonl", "csv")
EVENT_KEYS = (
    "case_id", "seq", "event", "from_state", "to_state", "actor", "occurred_at",
    "recorded_at", "data", "prev_hash", "hash",
)  # fmt: skip
CSV_COLUMNS = ("record", *EVENT_KEYS, "machine", "machine_version", "v", "personal")
FORMAT_1_CSV_COLUMNS = CSV_COLUMNS[:-2]
"""The columns of exports written before histories of format 2 (still read)."""


@dataclass(frozen=True)
class ExportSummary:
    """What an export wrote."""

    cases: int
    events: int
    digest: str

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"cases": self.cases, "events": self.events, "digest": self.digest}


_LINE_KEYS = (*EVENT_KEYS, "machine", "machine_version", "v")


class _Writer:
    """Writes records as JSON Lines or CSV (``redact``: without personal values)."""

    def __init__(self, out: IO[str], fmt: str, redact: bool = False) -> None:
        self.out = out
        self.redact = redact
        self.csv = csv.writer(out, lineterminator="\n") if fmt == "csv" else None
        if self.csv is not None:
            self.csv.writerow(CSV_COLUMNS)

    def meta(self, record: str, fields: Mapping[str, Any]) -> None:
        if self.csv is None:
            self.out.write(orjson.dumps({"record": record, **fields}).decode() + "\n")
        else:
            row = [""] * len(CSV_COLUMNS)
            row[0], row[CSV_COLUMNS.index("data")] = record, orjson.dumps(fields).decode()
            self.csv.writerow([formula_safe(cell) for cell in row])

    def event(self, row: tuple[Any, ...]) -> dict[str, str] | None:
        """One event: its columns followed by its case's machine, machine version and
        format, and on a format-2 opening the personal values (returned)."""
        personal = None if self.redact else _personal(row)
        if self.csv is None:
            fields: dict[str, Any] = {"record": "event"}
            fields.update(zip(_LINE_KEYS, row[:14], strict=True))
            fields["data"] = orjson.Fragment(row[8])
            if personal is not None:
                fields["personal"] = personal
            self.out.write(orjson.dumps(fields, option=orjson.OPT_APPEND_NEWLINE).decode())
        else:
            shown = "" if personal is None else orjson.dumps(personal).decode()
            self.csv.writerow([formula_safe(cell) for cell in ("event", *row[:14], shown)])
        return personal


_FORMULA = re.compile(r"'*[=+\-@\t\r]")
"""A cell a spreadsheet would run as a formula (after any quotes already there)."""


def formula_safe(cell: Any) -> Any:
    """A CSV cell a spreadsheet shows as text: one that starts with ``= + - @``, a tab
    or a carriage return (after any ``'``) gets a ``'`` before it; :func:`from_csv_cell`
    takes it off again, so the export still verifies."""
    return f"'{cell}" if isinstance(cell, str) and _FORMULA.match(cell) else cell


def from_csv_cell(cell: str) -> str:
    """The value :func:`formula_safe` wrote as ``cell``."""
    return cell[1:] if cell.startswith("'") and _FORMULA.match(cell) else cell


def _personal(row: tuple[Any, ...]) -> dict[str, str] | None:
    """The personal values of a format-2 opening event's row, ``[erased]`` for each
    commitment whose value is gone; ``None`` for every other event."""
    if row[1] != 1 or row[13] != PERSONAL_FORMAT:
        return None
    kept = orjson.loads(row[14]) if row[14] else {}
    return {name: kept.get(name, ERASED_TEXT) for name in commitments(orjson.loads(row[8]))}


def head_line(case_id: str, seq: int, digest: str, lines: str | None = None) -> bytes:
    """A case's line in the export digest; ``lines`` (version 2): the hex SHA-256 of its
    records' :func:`unhashed` fields."""
    return f"{case_id} {seq} {digest}{'' if lines is None else ' ' + lines}\n".encode()


def unhashed(machine: Any, machine_version: Any, v: Any, personal: Any) -> bytes:
    """What of an event record no event hash covers, as the export digest takes it."""
    return canonical_json([machine, machine_version, v, personal]).encode() + b"\n"


def export_digest(records: Iterable[Mapping[str, Any]], version: int = VERSION) -> str:
    """The ``end`` digest of event records (as JSON Lines hold them), in file order."""
    digest = hashlib.sha256()
    last: Mapping[str, Any] | None = None
    lines = hashlib.sha256()
    for record in records:
        if last is not None and record["case_id"] != last["case_id"]:
            digest.update(_head(last, lines, version))
            lines = hashlib.sha256()
        lines.update(
            unhashed(record.get("machine"), record.get("machine_version"), record.get("v", 1),
                     record.get("personal"))
        )  # fmt: skip
        last = record
    if last is not None:
        digest.update(_head(last, lines, version))
    return digest.hexdigest()


def _head(record: Mapping[str, Any], lines: Any, version: int) -> bytes:
    tail = lines.hexdigest() if version >= 2 else None
    return head_line(record["case_id"], record["seq"], record["hash"], tail)


def header_digest(header: Mapping[str, Any]) -> str:
    """The SHA-256 of a header's fields (without ``record``) as canonical JSON."""
    fields = {k: v for k, v in header.items() if k != "record"}
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


def end_statement(
    header_sha256: str, cases: int, events: int, digest: str, version: int = VERSION
) -> dict[str, Any]:
    """What a signed export's signature covers."""
    return {
        "format": FORMAT,
        "version": version,
        "header_sha256": header_sha256,
        "cases": cases,
        "events": events,
        "digest": digest,
    }


def write_export(
    store: Store,
    out: IO[str],
    *,
    fmt: str = "jsonl",
    redact: bool = False,
    since: datetime | None = None,
    until: datetime | None = None,
    case_id: str | None = None,
    policies: Mapping[str, Mapping[str, Any]],
    now: datetime,
    progress: Callable[[int], None] | None = None,
    sign: Callable[[Mapping[str, Any]], Mapping[str, str]] | None = None,
) -> ExportSummary:
    """Stream the selected events of the database behind ``store`` to ``out`` from one snapshot;
    ``sign`` (:func:`casework.workflow.audit.checkpoints.export_signer`) signs the end statement."""
    writer = _Writer(out, fmt, redact)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "event_format": PERSONAL_FORMAT,
        "redacted": redact,
        "exported_at": iso(now),
        "filters": {
            "since": None if since is None else iso(since),
            "until": None if until is None else iso(until),
            "case": case_id,
        },
        "policies": dict(policies),
    }
    writer.meta("header", header)
    digest = hashlib.sha256()
    cases = events = 0
    last: tuple[Any, ...] | None = None
    low = None if since is None else iso(since)
    high = None if until is None else iso(until)
    lines = hashlib.sha256()
    with store.audit.export_rows(case_id, low, high) as rows:
        last_case = None
        for row in rows:
            personal = writer.event(row)
            events += 1
            if row[0] != last_case:
                if last is not None:
                    digest.update(head_line(last[0], last[1], last[10], lines.hexdigest()))
                    lines = hashlib.sha256()
                cases += 1
                last_case = row[0]
            lines.update(unhashed(row[11], row[12], row[13], personal))
            last = row
            if progress is not None and events % 10_000 == 0:
                progress(events)
    if last is not None:
        digest.update(head_line(last[0], last[1], last[10], lines.hexdigest()))
    summary = ExportSummary(cases, events, digest.hexdigest())
    end = summary.to_json()
    if sign is not None:
        end["header_sha256"] = header_digest(header)
        statement = end_statement(end["header_sha256"], cases, events, summary.digest)
        end["signature"] = dict(sign(statement))
    writer.meta("end", end)
    return summary
