"""What every command's ``--help`` ends with: the values its options take, in full, and
examples to copy. One table, so a test can see that no command goes without."""

from __future__ import annotations

from collections.abc import Callable

EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        "open --customer C-1001 --channel phone --category service_delayed "
        '--summary "师傅没有按约上门" --actor li.na',
        "fire 3f2a9c1e apologise --actor li.na",
        "list --overdue",
        "verify",
        "worker                          # run the SLA scheduler until stopped",
    ),
    "attach": (
        "attach 3f2a9c1e 检测报告.pdf --kind test_report --actor li.na",
        "attach 3f2a photo.jpg --kind photo --actor li.na",
    ),
    "checkpoint": (
        "checkpoint --key /etc/casework/signing.key --out checkpoint-2026-11-30.json",
        "checkpoint --key signing.key --at 2026-11-30T23:59:00+08:00",
    ),
    "deliver": (
        "deliver --smtp smtp://mail.example.com:587",
        "deliver --batch 500 --json",
    ),
    "demo": ("demo", "demo --keep ./demo"),
    "erase": (
        'erase --customer 张伟 --actor wang.wei --reason "本人申请删除 2026-12-01 #PIPL-0042"',
        "erase --customer C-1001 --actor dpo --reason request --dry-run",
        "erase --due --dry-run                       # what [privacy] erase_after_days erases",
    ),
    "export": (
        "export --out november.jsonl --since 2026-11-01 --until 2026-11-30 --tz Asia/Shanghai",
        "export --out all.jsonl --sign /etc/casework/signing.key",
    ),
    "fire": (
        'fire 3f2a9c1e apologise --actor li.na --note "已电话致歉"',
        'fire 3f2a9c1e resolve --data solution="上门更换主板" --actor li.na',
        "fire 3f2a9c1e follow_up --data satisfaction=5 --actor wang.wei",
        "fire 3f2a9c1e wait --data reason=customer --actor li.na",
        "fire 3f2a9c1e assign --data to=wang.fang --actor li.na",
        "fire 3f2a --at '2026-11-23 09:30' apologise --actor li.na   # a prefix, local time",
    ),
    "reclassify": (
        'reclassify 3f2a9c1e --priority urgent --reason "顾客已投诉到12315" --actor wang.wei',
        "reclassify 3f2a --tier gold --category not_fixed_first_visit --actor li.na",
    ),
    "history": ("history 3f2a9c1e", "history 3f2a9c1e --json --tz UTC"),
    "keys": (
        "keys generate --key /etc/casework/signing.key --keyring keyring.json",
        "keys rotate --key /etc/casework/signing.key --keyring keyring.json",
    ),
    "keys generate": ("keys generate --key /etc/casework/signing.key --keyring keyring.json",),
    "keys rotate": ("keys rotate --key /etc/casework/signing.key --keyring keyring.json",),
    "list": (
        "list --open --owner li.na",
        "list --branch 东莞长安店 --category missed_appointment --since 2026-11-01",
        "list --closed --until 2026-11-30 --json",
        "list --open --cursor ZHVlfDIwMjYtMTEt...        # the next page",
        "list --overdue --branch 东莞长安店",
    ),
    "jobs": (
        "jobs import november-jobs.csv",
        "jobs add --kind repair --branch 东莞长安店 --category missed_appointment --at 2026-11-20",
    ),
    "jobs add": (
        "jobs add --kind installation --branch 东莞长安店 --partner P-安装一队 "
        "--at 2026-11-20 --count 12",
    ),
    "jobs import": ("jobs import november-jobs.csv",),
    "partners": (
        "partners add P-安装一队 --name 长安安装一队 --kind installer --branch 东莞长安店",
        "partners list",
    ),
    "partners add": (
        "partners add P-安装一队 --name 长安安装一队 --kind installer --branch 东莞长安店",
        "partners add M-华为 --name 华为售后 --kind manufacturer",
    ),
    "partners list": ("partners list", "partners list --json"),
    "survey-link": ("survey-link 3f2a9c1e", "survey-link 3f2a9c1e --json"),
    "report daily": (
        "report daily",
        "report daily --date 2026-12-04 --branch 东莞分部 --json",
    ),
    "report partners": (
        "report partners --quarter 2026Q3 --html partners.html",
        "report partners --quarter 2026Q4 --json",
    ),
    "machines": ("machines", "machines --diagram ./diagrams", "machines --json"),
    "migrate": ("migrate", "migrate --db postgresql://casework@db/casework"),
    "open": (
        "open --customer C-1001 --channel phone --category missed_appointment "
        '--summary "师傅没有按约上门" --branch 东莞长安店 --actor li.na',
        "open --customer C-1002 --channel letter --category service_delayed "
        '--summary "维修拖延" --received-at "2026-11-20 14:00"',
    ),
    "outbox": (
        "outbox --status dead",
        "outbox --case 3f2a9c1e --kind escalation",
    ),
    "outbox retry": (
        "outbox retry 42",
        "outbox retry --all",
        "outbox retry --all --status pending",
    ),
    "related": ("related 3f2a9c1e", "related 3f2a --json"),
    "replan": (
        "replan 3f2a9c1e --actor zhang.wei",
        "replan --all --dry-run --actor zhang.wei",
        "replan --all --actor zhang.wei --json",
    ),
    "replay": ("replay 3f2a9c1e", "replay 3f2a9c1e --at '2026-11-21 18:00'"),
    "report": (
        "report sla --month 2026-11 --html sla.html",
        "report case 3f2a9c1e --html case.html",
    ),
    "report case": ("report case 3f2a9c1e --html case.html --tz Asia/Shanghai",),
    "report complaints": (
        "report complaints --month 2026-11 --dispatch jobs.csv --html complaints.html",
        "report complaints --last 7d --branch 东莞长安店 --json",
    ),
    "report sla": (
        "report sla --month 2026-11 --tz Asia/Shanghai --html sla.html",
        "report sla --from 2026-11-01 --to 2026-11-30 --branch 东莞长安店 --json",
        "report sla --last 7d",
    ),
    "serve": (
        "tokens create --actor li.na --role agent",
        "serve --port 8080",
        "serve --host 0.0.0.0 --workers 4 --db postgresql://casework@db/casework",
        'curl -H "Authorization: Bearer cw_..." http://127.0.0.1:8080/v1/cases',
    ),
    "show": ("show 3f2a9c1e", "show 3f2a --tz Asia/Shanghai", "show 3f2a9c1e --json"),
    "simulate": (
        "simulate --policy tighter.toml --month 2026-11 --tz Asia/Shanghai",
        "simulate --policy tighter.toml --last 30d --branch 东莞长安店 --json",
    ),
    "sla": ("sla explain 3f2a9c1e",),
    "sla explain": ("sla explain 3f2a9c1e", "sla explain 3f2a9c1e --json"),
    "tick": ("tick", "tick --now '2026-11-24 09:00' --json"),
    "tokens": (
        "tokens create --actor li.na --role agent --branch 东莞长安店",
        "tokens list",
        "tokens revoke 3f2a9c1e",
    ),
    "tokens create": (
        "tokens create --actor li.na --role agent --branch 东莞长安店",
        "tokens create --actor audit.office --role auditor",
    ),
    "tokens list": ("tokens list", "tokens list --json"),
    "tokens revoke": ("tokens revoke 3f2a9c1e",),
    "verify": (
        "verify",
        "verify 3f2a9c1e",
        "verify --export november.jsonl --keyring keyring.json",
        "verify --checkpoint checkpoint.json --keyring keyring.json",
    ),
    "webhooks": (
        "webhooks add --url https://erp.example.com/casework --events resolve,reopen",
        "webhooks list",
        "webhooks deliveries --status dead",
    ),
    "webhooks add": (
        "webhooks add --url https://erp.example.com/casework --events resolve,reopen",
        "webhooks add --url http://127.0.0.1:9000/hook          # every event",
    ),
    "webhooks deliveries": ("webhooks deliveries", "webhooks deliveries --status dead --json"),
    "webhooks list": ("webhooks list", "webhooks list --removed"),
    "webhooks remove": ("webhooks remove 1a2b3c4d",),
    "webhooks retry": ("webhooks retry 42",),
    "worker": (
        "worker",
        "worker --config /etc/casework/casework.toml --poll 5",
        "worker --no-webhooks",
    ),
}
"""Each command path (``""`` for ``casework`` itself) and its examples, without the
leading ``casework``."""


def _channels() -> str:
    from casework.workflow.config import DEFAULT_CHANNELS

    return ", ".join(DEFAULT_CHANNELS) + " (and those [intake] channels adds)"


def _categories() -> str:
    from casework.workflow.config import DEFAULT_CATEGORIES

    return ", ".join(DEFAULT_CATEGORIES) + " (and those [intake] categories adds)"


def _priorities() -> str:
    from casework.workflow.config import DEFAULT_PRIORITIES

    return ", ".join(DEFAULT_PRIORITIES)


def _machines(part: str) -> list[tuple[str, str]]:
    from casework.machines.definition import AGENT_EVENTS, HAND_EVENTS
    from casework.workflow.catalog import installed_registry

    rows = []
    for definition in installed_registry():
        values = (
            definition.states
            if part == "states"
            else definition.events + AGENT_EVENTS + HAND_EVENTS
        )
        rows.append((f"{part} of {definition.name} v{definition.version}", ", ".join(values)))
    return rows


def _case_fields() -> list[tuple[str, str]]:
    return [
        ("--channel", _channels()),
        ("--category", _categories()),
        ("--priority", _priorities()),
    ]


VALUES: dict[str, Callable[[], list[tuple[str, str]]]] = {
    "open": _case_fields,
    "reclassify": _case_fields,
    "fire": lambda: _machines("events"),
    "list": lambda: [*_machines("states"), *_case_fields()[:3]],
    "report sla": lambda: [("--last", "a number and h, d or w: 24h, 7d, 4w")],
    "report complaints": lambda: [("--last", "a number and h, d or w: 24h, 7d, 4w")],
}
"""The commands whose options take values from the configuration or the machines."""
