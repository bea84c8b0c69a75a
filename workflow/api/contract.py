"""The OpenAPI document a client is generated from, completed with what the server
enforces: the enums of the settings and machines the application was built with (the
very lists the engine checks against), text constraints, the headers each answer
carries, every status that occurs, typed lists, the export's line, links from a new
case to its operations, and the webhook deliveries under OpenAPI 3.1 ``webhooks``."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any
from zoneinfo import available_timezones

from casework.machines import AGENT_EVENTS, ENGINE_EVENTS, OPEN_EVENT
from casework.machines.definition import EVIDENCE_KINDS, HAND_EVENTS, MachineDefinition
from casework.machines.warranty import REMEDIES
from casework.storage.records import STATUSES
from casework.workflow.access.tokens import ROLES
from casework.workflow.api.idempotency import MAX_KEY_CHARS
from casework.workflow.api.problems import MEDIA_TYPE
from casework.workflow.cases.intake import INTAKE, IntakeField
from casework.workflow.engine import Engine
from casework.workflow.validation import MAX_AGENT_CHARS, MAX_CASE_REF_CHARS

_BAD = r"\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_BAD_MULTI = r"\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
LINE = rf"^[^{_BAD}]*[^{_BAD}\s][^{_BAD}]*$"
"""One line of text with something besides spaces: no control, line-break or
bidirectional characters (what :func:`casework.workflow.validation.text` refuses)."""
TEXT = rf"^[^{_BAD_MULTI}]*[^{_BAD_MULTI}\s][^{_BAD_MULTI}]*$"
"""Text of several lines with something besides spaces."""
AGENT = rf"^[^{_BAD}@]*[^{_BAD}\s@][^{_BAD}@]*$"
"""An agent id: one line, no ``@``."""
KEY = r"^[!-~]([ -~]*[!-~])?$"
"""An ``Idempotency-Key``: visible ASCII (a header's value, without outer spaces)."""
ETAG = r'^("[0-9]{1,12}"|[0-9]{1,12}|\*)$'
INSTANT = (
    r"^(19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]"
    r"([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""An instant the server takes: ISO 8601 with its offset, in the years 1900 to 8999."""

NO_NUL = "^[^\\u0000]*$"
REF = "#/components/schemas/"
HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": 'The case\'s version, e.g. "3": send it back as If-Match.',
             "schema": {"type": "string"}},
    "Location": {"description": "Where the new resource is read.", "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true`: the kept answer to an earlier request with this Idempotency-Key.",
        "schema": {"type": "string", "enum": ["true"]},
    },
    "Retry-After": {"description": "Seconds to wait before trying again.",
                    "schema": {"type": "integer", "minimum": 0}},
    "Allow": {"description": "The methods the path takes.", "schema": {"type": "string"}},
    "WWW-Authenticate": {"description": "The Bearer scheme.", "schema": {"type": "string"}},
}  # fmt: skip
_MORE_PROBLEMS = {
    405: "A method the path does not take (`Allow` names those it does).",
    412: "If-Match names a version the case is no longer at: read it again.",
    413: "A body over the route's limit (1 MiB; the attachment limit on an upload).",
    415: "A body in another media type than the route takes.",
}
LOCATED = {"open_case", "add_webhook", "create_token"}
"""Operations whose 201 carries ``Location``."""
VERSIONED = {"open_case", "get_case", "apply_event", "replan"}
"""Operations whose answer carries the case's ``ETag``."""


FILTERS = {
    ("list_cases", "state"): "State",
    ("list_cases", "channel"): "Channel",
    ("list_cases", "category"): "Category",
    ("list_cases", "priority"): "Priority",
    ("outbox", "status"): "OutboxStatus",
    ("deliveries", "status"): "OutboxStatus",
    ("attach_file", "kind"): "AttachmentKind",
    ("sla_report", "tz"): "TimeZone",
    ("complaints_report", "tz"): "TimeZone",
    ("partners_report", "tz"): "TimeZone",
}
"""Query parameters the server checks against a named enum."""
PARAMETERS: dict[str, dict[str, Any]] = {
    "case_id": {"type": "string", "minLength": 1, "maxLength": MAX_CASE_REF_CHARS},
    "case": {"type": "string", "minLength": 1, "maxLength": MAX_CASE_REF_CHARS},
    "digest": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    "name": {"type": "string", "minLength": 1, "maxLength": 200, "pattern": LINE},
    "quarter": {"type": "string", "pattern": "^(19|[2-8][0-9])[0-9]{2}Q[1-4]$"},
    "month": {"type": "string", "pattern": "^(19|[2-8][0-9])[0-9]{2}-(0[1-9]|1[0-2])$"},
}
"""Parameters' schemas as the server checks them (beyond their type)."""


def complete(document: dict[str, Any], engine: Engine) -> dict[str, Any]:
    """``document`` (FastAPI's) completed for the application serving ``engine``."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    document["components"]["headers"] = HEADERS
    schemas.update(_vocabulary(engine))
    schemas.update(_answers())
    _bodies(schemas, engine)
    _answer_fields(schemas)
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            _operation(path, method, operation)
    document["webhooks"] = _webhooks(engine)
    return document


def _enum(values: Iterable[str], description: str) -> dict[str, Any]:
    return {"type": "string", "enum": sorted(dict.fromkeys(values)), "description": description}


def _fireable(engine: Engine) -> list[str]:
    events = [e for d in engine.registry for e in d.events]
    return [*events, *AGENT_EVENTS, *HAND_EVENTS]


def _vocabulary(engine: Engine) -> dict[str, Any]:
    """The named enums: each from the list the engine checks against."""
    s, machines = engine.settings, list(engine.registry)
    every = [OPEN_EVENT, *_fireable(engine), *sorted(ENGINE_EVENTS)]
    by_machine = "; ".join(f"{d.name} v{d.version}: {', '.join(d.events)}" for d in machines)
    return {
        "Channel": _enum(s.channels, "How the complaint came in ([intake] channels)."),
        "Category": _enum(s.categories, "What the complaint is about ([intake] categories)."),
        "Priority": _enum(s.priorities, "The case's priority ([intake] priorities)."),
        "MachineName": _enum((d.name for d in machines), "A registered machine."),
        "State": _enum((st for d in machines for st in d.states), "A state of a machine."),
        "FireableEvent": _enum(
            _fireable(engine),
            "An event a client may fire: the union over the machines (which ones a case "
            f"takes depends on its machine and state; {by_machine}), and the engine's "
            f"{', '.join((*AGENT_EVENTS, *HAND_EVENTS))}.",
        ),
        "EventName": _enum(every, "Any event a history may hold."),
        "Role": _enum(ROLES, "A token's role."),
        "Remedy": _enum(REMEDIES, "A warranty remedy (decide_remedy, resolve)."),
        "AttachmentKind": _enum(EVIDENCE_KINDS, "What an attached file is."),
        "OutboxStatus": _enum(STATUSES, "Where an outbox row stands."),
        "TimeZone": _enum(
            (z for z in available_timezones() if not re.search(r"GMT[+-]", z)),
            "An IANA time zone (the Etc/GMT+N aliases aside: their names differ by a sign "
            "alone, which generated clients cannot tell apart).",
        ),
    }


def _text(pattern: str, max_length: int, description: str | None = None) -> dict[str, Any]:
    found = {"type": "string", "minLength": 1, "maxLength": max_length, "pattern": pattern}
    return found if description is None else {**found, "description": description}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {"anyOf": [schema, {"type": "null"}]}


def _bodies(schemas: dict[str, Any], engine: Engine) -> None:
    """The request bodies: required fields, enums and text limits as the engine checks."""
    s = engine.settings
    opening = schemas["OpenCase"]["properties"]
    default = engine.registry.get(s.default_machine)
    schemas["OpenCase"]["required"] = [f.name for f in INTAKE if f.needed_by(default)]
    for field in INTAKE:
        opening[field.name] = _intake_schema(field, opening[field.name], engine, default)
    fire = schemas["FireEvent"]["properties"]
    fire["event"] = {"$ref": REF + "FireableEvent"}
    fire["note"] = _nullable(_text(TEXT, s.max_note_chars, "Free text kept with the event."))
    fire["data"] = _nullable(
        {"type": "object", "additionalProperties": True,
         "propertyNames": {"pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
         "properties": {"remedy": {"$ref": REF + "Remedy"},
                        "note": _text(TEXT, s.max_note_chars)},
         "description": fire["data"]["anyOf"][0].get("description", "Event data.")}
    )  # fmt: skip
    token = schemas["NewToken"]["properties"]
    token["actor"] = _text(AGENT, MAX_AGENT_CHARS, "Who the token speaks for (an agent id).")
    token["role"] = {"$ref": REF + "Role"}
    token["branch"] = _nullable(_text(LINE, 200, "Only this branch's cases."))
    hook = schemas["NewWebhook"]["properties"]
    hook["url"] = {"type": "string", "minLength": 8, "maxLength": 2000,
                   "pattern": "^[Hh][Tt][Tt][Pp][Ss]?://[^\\s/?#@]+([/?#][^\\s]*)?$",
                   "description": hook["url"].get("description")}  # fmt: skip
    erasure = schemas["Erasure"]["properties"]
    erasure["customer"] = _text(LINE, 200, "The customer, as their cases name them.")
    erasure["reason"] = _text(TEXT, s.max_note_chars, "Why: the request, its date, its reference.")
    partner = schemas["NewPartner"]["properties"]
    partner["id"] = _text(LINE, 100, partner["id"].get("description"))
    partner["name"] = _text(LINE, 200)
    partner["branch"] = _nullable(_text(LINE, 200, "The branch it works for."))
    jobs = schemas["NewJobs"]["properties"]
    jobs["branch"] = _text(LINE, 200, "The branch; a branch token's own.")
    jobs["category"] = _nullable({"$ref": REF + "Category"})
    jobs["partner"] = _nullable(_text(LINE, 100, "The partner who did it."))
    for body in ("OpenCase", "FireEvent", "NewJobs"):
        _instants(schemas[body])


def _intake_schema(
    field: IntakeField, found: dict[str, Any], engine: Engine, default: MachineDefinition
) -> dict[str, Any]:
    """A field of ``OpenCase`` as the engine checks it (``found``: pydantic's); one the
    default machine may go without may be ``null``."""
    s = engine.settings
    described = found.get("description")
    if field.kind == "line":
        schema = _text(LINE, field.max_chars or 0, described)
    elif field.kind == "text":
        schema = _text(TEXT, s.max_text_chars, described)
    elif field.kind == "choice":
        schema = {"$ref": REF + field.name.capitalize(), "description": described}
        if field.default is not None:
            return {**schema, "default": field.default}
    elif field.kind == "machine":
        schema = {"$ref": REF + "MachineName"}
    elif field.kind == "attributes":
        schema = _attributes(engine)
    else:
        return found
    return schema if field.needed_by(default) else _nullable(schema)


def _attributes(engine: Engine) -> dict[str, Any]:
    """The attributes the machines declare, as a case is opened with them."""
    s = engine.settings
    declared: dict[str, Any] = {}
    for definition in engine.registry:
        for name, spec in definition.attributes.items():
            if spec.kind == "integer":
                declared[name] = {"type": "integer", "minimum": -(10**18) + 1,
                                  "maximum": 10**18 - 1}  # fmt: skip
            elif spec.kind == "date":
                declared[name] = {"type": "string", "format": "date"}
            else:
                declared[name] = _text(LINE, spec.max_length)
    for vocabulary in (s.warranty.product_classes, s.warranty.fault_classes):
        if vocabulary.name in declared:
            spellings = [t.id for t in vocabulary.terms]  # ids first: what a client sends
            spellings += [x for t in vocabulary.terms for x in (t.zh, t.en, *t.aliases)]
            declared[vocabulary.name] = {
                **_enum(spellings, f"A term of {vocabulary.name} (its id, or a name of it)."),
                "enum": list(dict.fromkeys(spellings)),
            }
    return {"type": "object", "properties": declared, "additionalProperties": False,
            "description": "The machine's declared attributes (see GET /v1/machines)."}  # fmt: skip


def _instants(schema: Any) -> None:
    """Every ``date-time`` a request carries: the years the engine takes, an offset."""
    if isinstance(schema, dict):
        if schema.get("format") == "date-time":
            schema["pattern"] = INSTANT
        for value in schema.values():
            _instants(value)
    elif isinstance(schema, list):
        for value in schema:
            _instants(value)


def _no_nul(schema: dict[str, Any]) -> None:
    """A free text path or query value: anything but NUL (which the server refuses)."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "string" and not {"enum", "pattern", "format"} & set(option):
            option["pattern"] = NO_NUL


def _answer_fields(schemas: dict[str, Any]) -> None:
    """Enums and typed items in the answers."""
    case = schemas["CaseRecord"]["properties"]
    case["state"] = {"$ref": REF + "State"}
    case["machine"] = {"$ref": REF + "MachineName"}
    event = schemas["EventRecord"]["properties"]
    event["event"] = {"$ref": REF + "EventName"}
    event["to_state"] = {"$ref": REF + "State"}
    event["from_state"] = _nullable({"$ref": REF + "State"})
    page = schemas["CasePage"]["properties"]
    page["items"] = {
        "type": "array",
        "items": {"$ref": REF + "CaseRecord"},
        "description": "Cases; with overdue=true each late clock's case with "
        "`overdue_clock` and `late_by_s` (the shape of `list --overdue --json`).",
    }
    schemas["Token"]["properties"]["role"] = {"$ref": REF + "Role"}


def _answers() -> dict[str, Any]:
    """Schemas of answers no response model declares."""
    obj: dict[str, Any] = {"type": "object", "additionalProperties": True}
    return {
        "Machine": {
            **obj,
            "required": ["name", "version", "states", "events", "transitions"],
            "properties": {
                "name": {"type": "string"}, "version": {"type": "integer"},
                "title": {"type": "string"}, "initial_state": {"type": "string"},
                "states": {"type": "array", "items": {"type": "string"}},
                "final_states": {"type": "array", "items": {"type": "string"}},
                "events": {"type": "array", "items": {"type": "string"}},
                "transitions": {"type": "array", "items": obj},
                "attributes": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "Partner": {
            **obj,
            "required": ["id", "name", "kind"],
            "properties": {"id": {"type": "string"}, "name": {"type": "string"},
                           "kind": {"type": "string"}, "branch": _nullable({"type": "string"})},
        },
        "JobsRecorded": {
            **obj,
            "required": ["rows", "jobs"],
            "properties": {"rows": {"type": "integer"}, "jobs": {"type": "integer"}},
        },
        "Report": {**obj, "description": "The report's JSON (`casework report ... --json`)."},
        "ErasureReport": {**obj, "description": "The cases and fields erased (never a value)."},
        "ExportLine": {
            **obj,
            "required": ["record"],
            "description": "One line of the export: a `header`, one `event` per event "
            "(its hashed fields, machine, machine_version, v), and the `end` record with "
            "the counts and digest.",
            "properties": {
                "record": {"type": "string", "enum": ["header", "event", "end"]},
                "format": {"type": "string"}, "version": {"type": "integer"},
                "case_id": {"type": "string"}, "seq": {"type": "integer"},
                "event": {"type": "string"}, "hash": {"type": "string"},
                "prev_hash": {"type": "string"}, "cases": {"type": "integer"},
                "events": {"type": "integer"}, "digest": {"type": "string"},
            },
        },
    }  # fmt: skip


_ANSWER_SCHEMAS = {
    "list_partners": {"type": "array", "items": {"$ref": REF + "Partner"}},
    "register_partner": {"$ref": REF + "Partner"},
    "record_jobs": {"$ref": REF + "JobsRecorded"},
    "machines": {"type": "array", "items": {"$ref": REF + "Machine"}},
    "sla_report": {"$ref": REF + "Report"},
    "complaints_report": {"$ref": REF + "Report"},
    "partners_report": {"$ref": REF + "Report"},
    "erase_customer": {"$ref": REF + "ErasureReport"},
    "attach_file": {"$ref": REF + "EventRecord"},
}


def _header(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/headers/{name}"}


def _problem(description: str, **headers: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {
        "description": description,
        "content": {MEDIA_TYPE: {"schema": {"$ref": REF + "Problem"}}},
    }
    if headers:
        found["headers"] = headers
    return found


def _operation(path: str, method: str, operation: dict[str, Any]) -> None:
    """One operation's statuses, headers, parameters and links."""
    name = operation.get("operationId", "")
    responses: dict[str, Any] = operation["responses"]
    success = next(code for code in responses if code.startswith("2"))
    if name in _ANSWER_SCHEMAS:
        responses[success]["content"] = {"application/json": {"schema": _ANSWER_SCHEMAS[name]}}
    if name == "export":
        responses[success]["content"] = {
            "application/x-ndjson": {
                "schema": {
                    "type": "string",
                    "format": "binary",
                    "description": "JSON lines, each an ExportLine.",
                    "x-item-schema": {"$ref": REF + "ExportLine"},
                }
            }
        }
    if name == "attached_file":
        responses[success]["content"] = {
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}
        }
    if name == "metrics":
        responses[success]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    headers: dict[str, Any] = {}
    if name in VERSIONED:
        headers["ETag"] = _header("ETag")
    if name in LOCATED:
        headers["Location"] = _header("Location")
    if method == "post":
        headers["Idempotent-Replayed"] = _header("Idempotent-Replayed")
    if headers:
        responses[success]["headers"] = headers
    responses["405"] = _problem(_MORE_PROBLEMS[405], Allow=_header("Allow"))
    if "503" in responses:
        responses["503"].setdefault("headers", {})["Retry-After"] = _header("Retry-After")
    if "401" in responses:
        responses["401"]["headers"] = {"WWW-Authenticate": _header("WWW-Authenticate")}
    if name == "apply_event":
        responses["412"] = _problem(_MORE_PROBLEMS[412])
    if method == "post":
        responses["413"] = _problem(_MORE_PROBLEMS[413])
        responses.setdefault("409", _problem("The same Idempotency-Key is in use."))
    body = operation.get("requestBody", {}).get("content", {})
    if body:
        responses["415"] = _problem(_MORE_PROBLEMS[415])
    if "{" in path and "404" not in responses and path.startswith("/v1/"):
        responses["404"] = _problem("Not found (or not the token's to see).")
    operation["responses"] = dict(sorted(responses.items()))
    for parameter in operation.get("parameters", []):
        _instants(parameter.get("schema"))
        named = FILTERS.get((name, parameter["name"]))
        if named is not None:
            ref = {"$ref": REF + named}
            parameter["schema"] = _nullable(ref) if "anyOf" in parameter["schema"] else ref
        if parameter["name"] in PARAMETERS:
            optional = "anyOf" in parameter.get("schema", {})
            exact = PARAMETERS[parameter["name"]]
            parameter["schema"] = _nullable(exact) if optional else exact
        if parameter["in"] in ("path", "query"):
            _no_nul(parameter["schema"])
        if parameter["name"] == "Idempotency-Key":
            parameter["schema"] = {"type": "string", "minLength": 1,
                                   "maxLength": MAX_KEY_CHARS, "pattern": KEY}  # fmt: skip
        if parameter["name"] == "If-Match":
            parameter["schema"] = {"type": "string", "pattern": ETAG}
            parameter["description"] = 'The case\'s ETag, e.g. "3": 412 if it moved on.'
    if name == "open_case":
        case_id = {"case_id": "$response.body#/id"}
        responses["201"]["links"] = {
            "GetCase": {"operationId": "get_case", "parameters": case_id,
                        "description": "The case just opened."},
            "ApplyEvent": {"operationId": "apply_event",
                           "parameters": {**case_id, "header.If-Match": "$response.header.ETag"},
                           "description": "Fire an event on the case at the version opened."},
            "History": {"operationId": "history", "parameters": case_id,
                        "description": "The case's events."},
            "Attach": {"operationId": "attach_file", "parameters": case_id,
                       "description": "Attach a file to the case."},
            "Sla": {"operationId": "sla", "parameters": case_id,
                    "description": "How the case's SLA clocks stand."},
        }  # fmt: skip
    at_version = {"case_id": "$response.body#/id", "header.If-Match": "$response.header.ETag"}
    if name in ("apply_event", "get_case"):
        responses["200"]["links"] = {
            "ApplyEvent": {"operationId": "apply_event", "parameters": at_version,
                           "description": "Fire the next event at the version answered."},
            "History": {"operationId": "history", "parameters": {"case_id": "$response.body#/id"},
                        "description": "The case's events."},
        }  # fmt: skip
    if name == "attach_file":
        responses["201"]["links"] = {
            "File": {"operationId": "attached_file",
                     "parameters": {"digest": "$response.body#/data/digest"},
                     "description": "The file just attached."}
        }  # fmt: skip
    if name == "list_cases":
        responses["200"]["links"] = {
            "NextPage": {"operationId": "list_cases",
                         "parameters": {"cursor": "$response.body#/next_cursor"},
                         "description": "The next page (while next_cursor is not null)."}
        }  # fmt: skip
    if name == "create_token":
        responses["201"]["links"] = {
            "Revoke": {"operationId": "revoke_token",
                       "parameters": {"token_id": "$response.body#/id"}}
        }  # fmt: skip
    if name == "add_webhook":
        responses["201"]["links"] = {
            "Remove": {"operationId": "remove_webhook",
                       "parameters": {"webhook_id": "$response.body#/id"}}
        }  # fmt: skip


def _webhooks(engine: Engine) -> dict[str, Any]:
    """One webhook per event type: the JSON a subscription receives, signed."""
    signed = [
        {"name": "webhook-id", "in": "header", "required": True, "schema": {"type": "string"},
         "description": "The delivery's id, the same on every attempt."},
        {"name": "webhook-timestamp", "in": "header", "required": True,
         "schema": {"type": "string"}, "description": "Unix seconds."},
        {"name": "webhook-signature", "in": "header", "required": True,
         "schema": {"type": "string"},
         "description": "v1,<base64 HMAC-SHA256 of '{id}.{timestamp}.{body}' keyed by the "
         "secret's base64-decoded bytes> (Standard Webhooks)."},
    ]  # fmt: skip
    every = sorted(dict.fromkeys([OPEN_EVENT, *_fireable(engine), *sorted(ENGINE_EVENTS)]))
    hooks = {}
    for event in every:
        payload = {
            "type": "object",
            "required": ["type", "case", "event"],
            "properties": {
                "type": {"type": "string", "const": f"case.{event}"},
                "case": {"$ref": REF + "CaseRecord"},
                "event": {"allOf": [{"$ref": REF + "EventRecord"}],
                          "properties": {"event": {"const": event}}},
            },
        }  # fmt: skip
        hooks[f"case.{event}"] = {
            "post": {
                "summary": f"A case's {event} event",
                "operationId": f"webhook_case_{event}",
                "parameters": signed,
                "requestBody": {"required": True,
                                "content": {"application/json": {"schema": payload}}},
                "responses": {"2XX": {"description": "Received; anything else is retried."}},
            }
        }  # fmt: skip
    return hooks
