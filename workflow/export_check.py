"""Verifying an export on its own, without the database.

The checks are those of ``casework verify`` that need no case row: each case's events
are contiguous, each links to the one before and hashes to its recorded hash, and a
case exported from its first event replays through its machine (with the SLA policies
the export carries) exactly as recorded. On top, the file must be whole and in order:
a header first, events ordered by case id and seq, and an ``end`` record whose counts
and digest match what came before it.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import orjson

from machines import MachineDefinition, MachineRegistry
from machines.sla import PolicyError, SlaPolicy, policy_from_document
from storage import canonical_json
from workflow.audit_export import CSV_COLUMNS, EVENT_KEYS, FORMAT, VERSION
from workflow.errors import InvalidInput
from workflow.history import CaseChecker
from workflow.results import Problem, VerifyReport

FILE = "(export)"
"""The case id under which problems of the file as a whole are reported."""

Record = tuple[str, Any]


def _jsonl(lines: Iterator[str]) -> Iterator[Record]:
    for number, line in enumerate(lines, 1):
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            yield "broken", f"line {number} is not JSON"
            continue
        if not isinstance(record, dict):
            yield "broken", f"line {number} is not a JSON object"
            continue
        kind = record.get("record")
        if kind == "event":
            try:
                row = tuple(record[k] for k in EVENT_KEYS)
                data = row[8]
                text = canonical_json(data) if isinstance(data, dict) else None
            except (KeyError, TypeError, ValueError):
                yield "broken", f"line {number}: an event record lacks a field or is malformed"
                continue
            if text is None:
                yield "broken", f"line {number}: event data is not an object"
                continue
            yield "event", (*row[:8], text, *row[9:], record.get("machine"),
                            record.get("machine_version"))  # fmt: skip
        else:
            yield str(kind), record


def _csv(lines: Iterator[str]) -> Iterator[Record]:
    reader = csv.reader(lines)
    columns = next(reader, None)
    if columns is None or tuple(columns) != CSV_COLUMNS:
        yield "broken", "the first line does not name the export's columns"
        return
    data = CSV_COLUMNS.index("data")
    for number, row in enumerate(reader, 2):
        if len(row) != len(CSV_COLUMNS):
            yield "broken", f"line {number} has {len(row)} columns, not {len(CSV_COLUMNS)}"
            continue
        kind = row[0]
        if kind == "event":
            try:
                seq, version = int(row[2]), int(row[13] or 0)
            except ValueError:
                yield "broken", f"line {number}: seq or machine_version is not a number"
                continue
            yield "event", (row[1], seq, row[3], row[4] or None, *row[5:12], row[12], version)
        else:
            try:
                yield kind, orjson.loads(row[data])
            except orjson.JSONDecodeError:
                yield "broken", f"line {number}: the {kind} record's data is not JSON"


def _records(path: Path) -> Iterator[Record]:
    with path.open(encoding="utf-8", newline="") as file:
        first = file.read(1)
        file.seek(0)
        yield from (_jsonl(file) if first == "{" else _csv(file))


def _policies(
    documents: Any, definition: MachineDefinition
) -> tuple[dict[str, SlaPolicy], str | None]:
    if not isinstance(documents, Mapping):
        return {}, "the header's policies are not an object"
    found = {}
    for version, document in documents.items():
        try:
            found[version] = policy_from_document(document, definition.states, definition.events)
        except (PolicyError, TypeError, ValueError, KeyError) as err:
            return {}, f"the header's SLA policy {version} is unusable: {err}"
    return found, None


class _ExportCheck:
    def __init__(self, registry: MachineRegistry) -> None:
        self.registry = registry
        self.problems: list[Problem] = []
        self.policies: dict[str, SlaPolicy] = {}
        self.cases = self.events = 0
        self.digest = hashlib.sha256()
        self.checker: CaseChecker | None = None
        self.case_id: str | None = None
        self.partial = False

    def file_problem(self, reason: str) -> None:
        self.problems.append(Problem(FILE, None, reason))

    def definition(self, machine: Any, version: Any) -> MachineDefinition | None:
        try:
            return self.registry.get(str(machine), int(version))
        except Exception:  # an unknown machine is reported by the checker
            return None

    def header(self, record: Any) -> bool:
        if not isinstance(record, Mapping) or record.get("format") != FORMAT:
            self.file_problem("not a casework export: the first record is not its header")
            return False
        if record.get("version") != VERSION:
            self.file_problem(f"export format version {record.get('version')} is not {VERSION}")
            return False
        filters = record.get("filters")
        self.partial = isinstance(filters, Mapping) and filters.get("since") is not None
        default = self.registry.get("complaint")
        self.policies, problem = _policies(record.get("policies", {}), default)
        if problem:
            self.file_problem(problem)
            return False
        return True

    def event(self, row: tuple[Any, ...]) -> None:
        case_id, seq, machine, version = row[0], row[1], row[11], row[12]
        if case_id != self.case_id:
            if self.case_id is not None and case_id < self.case_id:
                self.file_problem(f"case {case_id} comes after {self.case_id}: records reordered")
            self.close_case()
            self.case_id = case_id
            self.cases += 1
            whole = seq == 1
            definition = self.definition(machine, version) if whole else None
            self.checker = CaseChecker(case_id, definition, self.policies)
            if not whole and not self.partial:
                self.checker.problem = Problem(
                    case_id, 1, f"event 1 is missing: the case's events start at {seq}"
                )
            elif not whole:
                self.checker.expected_seq = seq
                self.checker.prev_hash = row[9]
            elif definition is None:
                self.problems.append(
                    Problem(case_id, None, f"machine {machine} v{version} is not registered here")
                )
        assert self.checker is not None
        self.checker.add(row[:11])
        self.digest.update(str(row[10]).encode() + b"\n")
        self.events += 1

    def close_case(self) -> None:
        if self.checker is not None and self.checker.problem is not None:
            self.problems.append(self.checker.problem)
        self.checker = None

    def end(self, record: Any) -> None:
        self.close_case()
        expected = {"cases": self.cases, "events": self.events, "digest": self.digest.hexdigest()}
        if not isinstance(record, Mapping):
            self.file_problem("the end record is malformed")
            return
        for key, value in expected.items():
            if record.get(key) != value:
                self.file_problem(
                    f"the end record gives {key} {record.get(key)!r}, the file holds {value!r}: "
                    "records were added, removed or changed"
                )
                return


def verify_export(
    path: str | Path,
    registry: MachineRegistry,
    *,
    progress: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Check an export file on its own; problems of the file itself name case ``(export)``."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInput(f"no export file {file}", field="export")
    check = _ExportCheck(registry)
    records = _records(file)
    try:
        first = next(records, None)
        if first is None:
            check.file_problem("the file is empty")
        elif first[0] != "header" or not check.header(first[1]):
            if first[0] != "header":
                check.file_problem("not a casework export: the first record is not its header")
        else:
            ended = False
            for kind, body in records:
                if ended:
                    check.file_problem("records follow the end record")
                    break
                if kind == "event":
                    check.event(body)
                    if progress is not None and check.events % 10_000 == 0:
                        progress(check.events)
                elif kind == "end":
                    check.end(body)
                    ended = True
                elif kind == "broken":
                    check.file_problem(str(body))
                    break
                else:
                    check.file_problem(f"unknown record kind {kind!r}")
                    break
            if not ended and not check.problems:
                check.close_case()
                check.file_problem("the export is truncated: it has no end record")
    except UnicodeDecodeError:
        check.file_problem("the file is not UTF-8 text")
    return VerifyReport(check.cases, check.events, tuple(check.problems))
