"""Verifying an export on its own, without the database.

The checks are those of ``casework verify`` that need no case row: each case's events
are contiguous, each links to the one before and hashes to its recorded hash, and a
case exported from its first event replays through its machine exactly as recorded
(opened and replanned under SLA policies the export carries, waiting and resuming in
turn, warnings and escalations naming their clock). The clocks' arithmetic is left
out of that replay: an export holds no case rows or deadlines to compare it with, so
it could decide nothing (``verify`` compares it with both). On top, the file must be
whole and in order: a header first, events ordered by case id and seq, and an ``end``
record whose counts and digest match what came before it.

A large file is checked in two processes, each taking the cases on one side of a case
boundary near the middle of the file (cases are independent); the digest is then
computed over both halves' case heads in order.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import multiprocessing
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson

from casework.machines import MachineDefinition, MachineRegistry
from casework.machines.sla import PolicyError, SlaPolicy, policy_from_document, policy_version
from casework.storage import canonical_json
from casework.workflow.audit.export import (
    CSV_COLUMNS,
    EVENT_KEYS,
    FORMAT,
    FORMAT_1_CSV_COLUMNS,
    READ_VERSIONS,
    VERSION,
    end_statement,
    from_csv_cell,
    head_line,
    header_digest,
    unhashed,
)
from casework.workflow.cases.history import CaseChecker
from casework.workflow.errors import InvalidInput
from casework.workflow.results import EXPORT_FILE, Problem, VerifyReport

FILE = EXPORT_FILE
"""The case id of problems of the file as a whole (the name of older code)."""
NOT_AN_EXPORT = "not a casework export: the first record is not its header"
SPLIT_BYTES = 8 << 20
"""Files at least this large are checked in two processes."""
STARTUP_BYTES = 7 << 20
"""About what one process checks while the other starts: the first takes that much more."""

Record = tuple[str, Any]
_row = itemgetter(*EVENT_KEYS)
_EVENT_FIELDS = frozenset(CSV_COLUMNS)
"""The fields an event record may have: a field besides these is covered by no hash."""
_END_FIELDS = frozenset({"record", "cases", "events", "digest", "header_sha256", "signature"})
"""The fields the end record may have."""
_DATA, _PREV = b',"data":', b',"prev_hash":"'


@contextmanager
def _numbered(
    path: Path, start: int, count: int | None, first_line: int
) -> Iterator[Iterator[tuple[int, bytes]]]:
    """(line number, bytes) of ``count`` lines (all when ``None``) from byte ``start``."""
    with path.open("rb") as file:
        file.seek(start)
        yield zip(itertools.count(first_line), itertools.islice(file, count))


def _jsonl(lines: Iterator[tuple[int, bytes]]) -> Iterator[Record]:
    """Records of JSON Lines; an event's data is taken as the bytes written (canonical)
    and left out of the parse, which only needs the other fields."""
    loads, fields = orjson.loads, _row
    for number, line in lines:
        begin, stop = line.find(_DATA), line.rfind(_PREV)
        sliced = 0 < begin < stop
        try:
            record = loads(line[:begin] + line[stop:] if sliced else line)
        except orjson.JSONDecodeError:
            yield "broken", f"line {number} is not JSON"
            continue
        if type(record) is not dict:
            yield "broken", f"line {number} is not a JSON object"
            continue
        kind = record.get("record")
        if kind != "event":
            yield str(kind), loads(line) if sliced else record
            continue
        if not sliced:
            yield "broken", f"line {number}: an event record lacks a field"
            continue
        if not record.keys() <= _EVENT_FIELDS:
            added = ", ".join(sorted(record.keys() - _EVENT_FIELDS))
            yield "broken", f"line {number}: an event record has a field no export has: {added}"
            continue
        record["data"] = line[begin + len(_DATA) : stop].decode()
        try:
            row = fields(record)
        except KeyError:
            yield "broken", f"line {number}: an event record lacks a field"
            continue
        machine, version = record.get("machine"), record.get("machine_version")
        yield "event", (row, machine, version, record.get("v", 1), True, record.get("personal"))


def _csv(lines: Iterator[tuple[int, bytes]], with_columns: bool) -> Iterator[Record]:
    numbered = ((n, line.decode("utf-8")) for n, line in lines)
    numbers: list[int] = [0]

    def texts() -> Iterator[str]:
        for n, text in numbered:
            numbers[0] = n
            yield text

    reader = csv.reader(texts())
    if with_columns:
        columns = next(reader, None)
        if columns is None or tuple(columns) not in (CSV_COLUMNS, FORMAT_1_CSV_COLUMNS):
            yield "broken", "the first line does not name the export's columns"
            return
    data = CSV_COLUMNS.index("data")
    width = len(CSV_COLUMNS)
    for cells in reader:
        row = [from_csv_cell(cell) for cell in cells]
        number = numbers[0]
        if len(row) < len(FORMAT_1_CSV_COLUMNS) or len(row) > width:
            yield "broken", f"line {number} has {len(row)} columns, not {width}"
            continue
        kind = row[0]
        if kind == "event":
            try:
                seq, version = int(row[2]), int(row[13] or 0)
                v = int(row[14] or 1) if len(row) > 14 else 1
                personal = orjson.loads(row[15]) if len(row) > 15 and row[15] else None
            except ValueError:  # orjson's error is one
                yield "broken", f"line {number}: seq, machine_version, v or personal is unreadable"
                continue
            event = (row[1], seq, row[3], row[4] or None, *row[5:12])
            yield "event", (event, row[12], version, v, False, personal)
        else:
            try:
                yield kind, orjson.loads(row[data])
            except orjson.JSONDecodeError:
                yield "broken", f"line {number}: the {kind} record's data is not JSON"


def _policies(documents: Any) -> tuple[dict[str, SlaPolicy], str | None]:
    """The header's policy documents by version, each checked against its digest (the
    version the cases' events name), whatever machine it is of."""
    if not isinstance(documents, Mapping):
        return {}, "the header's policies are not an object"
    found = {}
    for version, document in documents.items():
        try:
            if policy_version(document) != version:
                return {}, (
                    f"the header's SLA policy {version} does not match its digest: "
                    "the document was edited"
                )
            found[version] = policy_from_document(document, None)
        except (PolicyError, TypeError, ValueError, KeyError, AttributeError) as err:
            return {}, f"the header's SLA policy {version} is unusable: {err}"
    return found, None


def _reformatted(checker: CaseChecker, row: tuple[Any, ...]) -> None:
    """Data that another tool rewrote (spacing, key order) is checked as its canonical form."""
    problem = checker.problem
    if problem is None or "altered" not in problem.reason:
        return
    try:
        canonical = canonical_json(orjson.loads(row[8]))
    except (orjson.JSONDecodeError, TypeError, ValueError):
        return
    if canonical != row[8]:
        checker.problem = None
        checker.add((*row[:8], canonical, *row[9:]))


@dataclass
class _Part:
    """What checking one stretch of the file found."""

    cases: int = 0
    events: int = 0
    problems: list[Problem] = field(default_factory=list)
    heads: list[bytes] = field(default_factory=list)
    """Each case's digest line, kept where the digest is finished elsewhere (the second
    process); the first part feeds its lines straight into the digest."""
    digest: Any = None
    first_case: str | None = None
    last_case: str | None = None
    end: Any = None
    ended: bool = False


class _Checker:
    def __init__(
        self,
        registry: MachineRegistry,
        policies: dict[str, SlaPolicy],
        partial: bool,
        version: int = VERSION,
    ):
        self.registry = registry
        self.policies = policies
        self.partial = partial
        self.version = version
        self.part = _Part()
        self.checker: CaseChecker | None = None
        self.last: tuple[Any, ...] | None = None
        self.lines = hashlib.sha256()

    def file_problem(self, reason: str) -> None:
        self.part.problems.append(Problem(FILE, None, reason))

    def _definition(self, machine: Any, version: Any) -> MachineDefinition | None:
        try:
            return self.registry.get(str(machine), int(version))
        except Exception:  # an unknown machine is reported as a problem of the case
            return None

    def _open(self, row: tuple[Any, ...], machine: Any, version: Any, v: Any) -> CaseChecker:
        case_id, seq = row[0], row[1]
        whole = seq == 1
        definition = self._definition(machine, version) if whole else None
        checker = CaseChecker(case_id, definition, self.policies, with_clocks=False)
        checker.format = v if v in (1, 2) else 1  # a chain cut short: as its records say
        if not whole and not self.partial:
            reason = f"event 1 is missing: the case's events start at {seq}"
            checker.problem = Problem(case_id, 1, reason)
        elif not whole:
            checker.expected_seq = seq
            checker.prev_hash = row[9]
        elif definition is None:
            reason = f"machine {machine} v{version} is not registered here"
            checker.problem = Problem(case_id, None, reason)
        return checker

    def close_case(self) -> None:
        if self.checker is not None and self.checker.problem is not None:
            self.part.problems.append(self.checker.problem)
        if self.last is not None:
            lines = self.lines.hexdigest() if self.version >= 2 else None
            line = head_line(self.last[0], self.last[1], self.last[10], lines)
            if self.part.digest is not None:
                self.part.digest.update(line)
            else:
                self.part.heads.append(line)
        self.checker = None
        self.last = None
        self.lines = hashlib.sha256()

    def run(self, records: Iterator[Record], progress: Callable[[int], None] | None) -> _Part:
        part = self.part
        checker: CaseChecker | None = None
        for kind, body in records:
            if part.ended:
                self.file_problem("records follow the end record")
                break
            if kind == "event":
                row, machine, version, v, from_jsonl, personal = body
                case_id = row[0]
                if case_id != part.last_case:
                    self._next_case(case_id)
                    checker = self.checker = self._open(row, machine, version, v)
                assert checker is not None
                checker.add(row)
                self.lines.update(unhashed(machine, version, v, personal))
                if from_jsonl and checker.problem is not None and checker.problem.seq == row[1]:
                    _reformatted(checker, row)
                self.last = row
                part.events += 1
                if progress is not None and part.events % 10_000 == 0:
                    progress(part.events)
            elif kind == "end":
                if not body.keys() <= _END_FIELDS:
                    added = ", ".join(sorted(body.keys() - _END_FIELDS))
                    self.file_problem(f"the end record has a field no export has: {added}")
                    break
                part.end, part.ended = body, True
            elif kind == "broken":
                self.file_problem(str(body))
                break
            else:
                self.file_problem(f"unknown record kind {kind!r}")
                break
        self.close_case()
        return part

    def _next_case(self, case_id: str) -> None:
        part = self.part
        if part.last_case is not None and case_id < part.last_case:
            self.file_problem(f"case {case_id} comes after {part.last_case}: reordered")
        self.close_case()
        part.last_case = case_id
        part.first_case = part.first_case or case_id
        part.cases += 1


def _records(lines: Iterator[tuple[int, bytes]], csv_file: bool, start: int) -> Iterator[Record]:
    return _csv(lines, with_columns=start == 0) if csv_file else _jsonl(lines)


def _check_part(
    path: str, csv_file: bool, start: int, line: int, documents: Any, partial: bool, version: int
) -> _Part:
    """The second half, in its own process."""
    from casework.workflow.catalog import installed_registry

    registry = installed_registry()
    policies, _ = _policies(documents)
    checker = _Checker(registry, policies, partial, version)
    with _numbered(Path(path), start, None, line) as lines:
        return checker.run(_records(lines, csv_file, start), None)


def _split(path: Path, size: int) -> tuple[int, int] | None:
    """(byte offset, line number) of the first line of a case that starts past the middle."""
    with path.open("rb") as file:
        middle = size // 2 + min(size // 4, STARTUP_BYTES)
        file.seek(middle)
        position = middle + len(file.readline())
        previous: bytes | None = None
        while True:
            line = file.readline()
            if not line:
                return None
            key = line[:80].split(b",", 3)[1] if line.startswith(b"{") else line.split(b",", 2)[1]
            if previous is not None and key != previous:
                break
            previous = key
            position += len(line)
        file.seek(0)
        lines = 1
        remaining = position
        while remaining > 0:
            chunk = file.read(min(remaining, 1 << 20))
            lines += chunk.count(b"\n")
            remaining -= len(chunk)
    return position, lines


def _header(path: Path, csv_file: bool) -> tuple[Any, int, int, list[Problem]]:
    """The header record, the byte offset and line number after it, and any problem."""
    with path.open("rb") as file:
        lines = [file.readline() for _ in range(2 if csv_file else 1)]
    if not lines[0]:
        return None, 0, 1, [Problem(FILE, None, "the file is empty")]
    offset = sum(len(line) for line in lines)
    with _numbered(path, 0, len(lines), 1) as numbered:
        records = list(_records(numbered, csv_file, 0))
    if records and records[0][0] == "header":
        return records[0][1], offset, len(lines) + 1, []
    reason = NOT_AN_EXPORT
    if records and records[0][0] == "broken":
        reason = str(records[0][1])
    return None, offset, len(lines) + 1, [Problem(FILE, None, reason)]


def verify_export(
    path: str | Path,
    registry: MachineRegistry,
    *,
    progress: Callable[[int], None] | None = None,
    workers: int = 1,
    check_signature: SignatureCheck | None = None,
) -> VerifyReport:
    """Check an export file on its own; problems of the file itself name case ``(export)``.

    With ``workers=2`` a large file is checked in two processes (only with the installed
    machines, which the second process loads itself). With ``check_signature`` (see
    :func:`casework.workflow.audit.checkpoints.statement_problem`) the export must be signed,
    by a key it accepts, over its header, counts and digest.
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"no export file {file}", field="export")
    with file.open("rb") as handle:
        csv_file = handle.read(1) != b"{"
    try:
        header, offset, line, problems = _header(file, csv_file)
        if problems:
            return VerifyReport(0, 0, tuple(problems))
        if not isinstance(header, Mapping) or header.get("format") != FORMAT:
            return VerifyReport(0, 0, (Problem(FILE, None, NOT_AN_EXPORT),))
        version = header.get("version")
        if version not in READ_VERSIONS:
            known = " or ".join(str(v) for v in READ_VERSIONS)
            reason = f"export format version {version} is not {known}"
            return VerifyReport(0, 0, (Problem(FILE, None, reason),))
        filters = header.get("filters")
        partial = isinstance(filters, Mapping) and filters.get("since") is not None
        documents = header.get("policies", {})
        policies, problem = _policies(documents)
        if problem:
            return VerifyReport(0, 0, (Problem(FILE, None, problem),))
        size = file.stat().st_size
        split = _split(file, size) if workers > 1 and size >= SPLIT_BYTES else None
        checker = _Checker(registry, policies, partial, version)
        checker.part.digest = hashlib.sha256()
        if split is None:
            with _numbered(file, offset, None, line) as lines:
                parts = [checker.run(_records(lines, csv_file, offset), progress)]
        else:
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
                upper = pool.submit(
                    _check_part, str(file), csv_file, split[0], split[1], documents, partial,
                    version,
                )  # fmt: skip
                with _numbered(file, offset, split[1] - line, line) as lines:
                    lower = checker.run(_records(lines, csv_file, offset), progress)
                parts = [lower, upper.result()]
    except UnicodeDecodeError:
        return VerifyReport(0, 0, (Problem(FILE, None, "the file is not UTF-8 text"),))
    report = _combine(parts)
    if check_signature is None:
        return report
    return _signature(report, parts[-1].end, header_digest(header), check_signature, version)


SignatureCheck = Callable[[Mapping[str, Any], str, Any], "str | None"]
"""``check(statement, key_id, signature)``: why the signature fails, or ``None``."""


def _signature(
    report: VerifyReport, end: Any, header_sha256: str, check: SignatureCheck, version: int
) -> VerifyReport:
    """The report with the export's signature checked: over the header as read and the
    counts and digest the file holds (``_combine`` compared the end record with them;
    from version 2 the digest covers every field of every record)."""
    signature = end.get("signature") if isinstance(end, Mapping) else None
    problem = None
    key = None
    if not isinstance(signature, Mapping):
        problem = "the export is not signed (export --sign KEY signs one)"
    elif end.get("header_sha256") != header_sha256:
        problem = "the header is not the one that was signed: its filters or policies were edited"
    else:
        key = str(signature.get("key_id"))
        statement = end_statement(
            header_sha256, report.cases, report.events, end.get("digest"), version
        )
        problem = check(statement, key, signature.get("value"))
    if problem is not None:
        return replace(report, problems=(*report.problems, Problem(FILE, None, problem)))
    covers = "every record" if version >= 2 else "heads only"
    return replace(report, signature={"key_id": key, "signature": "valid", "covers": covers})


def _combine(parts: list[_Part]) -> VerifyReport:
    problems = [p for part in parts for p in part.problems]
    cases = sum(p.cases for p in parts)
    events = sum(p.events for p in parts)
    if len(parts) == 2 and parts[0].last_case and parts[1].first_case:
        if parts[1].first_case <= parts[0].last_case:
            reason = f"case {parts[1].first_case} comes after {parts[0].last_case}: reordered"
            problems.append(Problem(FILE, None, reason))
        if parts[0].ended:
            problems.append(Problem(FILE, None, "records follow the end record"))
    end = parts[-1].end
    if not parts[-1].ended:
        if not problems:
            problems.append(Problem(FILE, None, "the export is truncated: it has no end record"))
        return VerifyReport(cases, events, tuple(problems))
    digest = parts[0].digest
    for part in parts[1:]:
        for head in part.heads:
            digest.update(head)
    expected = {"cases": cases, "events": events, "digest": digest.hexdigest()}
    if not isinstance(end, Mapping):
        problems.append(Problem(FILE, None, "the end record is malformed"))
    else:
        for key, value in expected.items():
            if end.get(key) != value:
                problems.append(
                    Problem(
                        FILE, None,
                        f"the end record gives {key} {end.get(key)!r}, the file holds {value!r}: "
                        "records were added, removed or changed",
                    )
                )  # fmt: skip
                break
    return VerifyReport(cases, events, tuple(problems))
