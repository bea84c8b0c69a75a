"""Scope is a ceiling: a branch token of any role acts only within its branch (tokens,
webhooks, erasure, outbox, attachments, partners, jobs), an auditor writes nothing, and
case ids, prefixes and relations resolve only among the cases the caller may see.

Against the real API server on loopback (and the console's token form), on SQLite and
PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
import pytest

from casework.storage.records import CaseQuery
from casework.workflow.access.tokens import issue
from casework.workflow.clock import FixedClock
from casework.workflow.config import Settings
from casework.workflow.engine import Engine
from casework.workflow.webhooks.settings import WebhookSettings
from tests.support.api_server import Served, serving

A, B = "东莞长安店", "广州天河店"
HOOKS = "erp.example.com"
INTAKE = {"channel": "phone", "category": "service_delayed", "summary": "师傅没有按约上门"}


@dataclass
class World:
    """Cases, a file, mails, a token and a subscription in two branches."""

    api: Served
    ids: dict[str, str]

    def client(self, role: str, branch: str | None, actor: str = "zhao.lei") -> httpx.Client:
        return self.api.client(self.api.token(role, actor, branch))


@pytest.fixture
def world(db_url: str, clock: FixedClock) -> Iterator[World]:
    settings = Settings(webhooks=WebhookSettings(allowed_hosts=(HOOKS,)))
    engine = Engine.open(db_url, clock=clock, config=settings)
    ids: dict[str, str] = {}
    for case_id, customer, branch in (
        ("ca5e-a", "CUST-A", A), ("beef0001", "CUST-AB", A),
        ("beef0002", "CUST-B", B), ("ca5e-b", "CUST-AB", B), ("f00d-b", "CUST-B", B),
    ):  # fmt: skip
        engine.open_case(customer=customer, branch=branch, actor="li.na", case_id=case_id,
                         **INTAKE)  # fmt: skip
    for case_id in ("ca5e-a", "beef0002"):
        content = f"检测报告 {case_id}".encode()
        attached = engine.attach(case_id, content, kind="photo", name="p.jpg", actor="li.na")
        ids[f"file {case_id}"] = engine.history(attached.id)[-1].data["digest"]
    with serving(engine) as api:
        with api.client(api.token("admin", "it.root")) as root:
            hook = root.post("/v1/webhooks", json={"url": f"https://{HOOKS}/every-branch"})
            assert hook.status_code == 201, hook.text
            ids["hook root"] = hook.json()["id"]
            partner = {"id": "P-1", "name": "安装一队", "kind": "installer"}
            assert root.post("/v1/partners", json=partner).status_code == 201
        ids["token B"] = issue(engine.context.store, "wu.fang", "agent", B, clock.now()).record.id
        clock.advance(timedelta(days=3))
        engine.process_due()  # warnings into the outbox, for cases of both branches
        for mail in engine.context.store.outbox.rows(kind="mail"):
            ids.setdefault(f"mail {engine.get(mail.case_id).branch}", str(mail.id))
        assert {"mail " + A, "mail " + B} <= set(ids)
        yield World(api, ids)
    engine.close()


JOBS = {"kind": "installation", "partner": "P-1", "done_at": "2026-11-20T10:00:00+08:00",
        "jobs": 4}  # fmt: skip
PARTNER = {"id": "P-2", "name": "安装二队", "kind": "installer"}
ERASE = {"reason": "the customer asked, ref 42", "dry_run": True}

TABLE: list[tuple[str, str | None, str, str, Any, int]] = [
    # tokens: only within the branch, no role above one's own
    ("admin", A, "POST", "/v1/tokens", {"actor": "x.y", "role": "admin"}, 403),
    ("admin", A, "POST", "/v1/tokens", {"actor": "x.y", "role": "agent", "branch": B}, 403),
    ("admin", A, "POST", "/v1/tokens", {"actor": "x.y", "role": "agent", "branch": A}, 201),
    ("admin", A, "POST", "/v1/tokens", {"actor": "x.y", "role": "admin", "branch": A}, 201),
    ("admin", None, "POST", "/v1/tokens", {"actor": "x.y", "role": "admin"}, 201),
    ("supervisor", A, "POST", "/v1/tokens", {"actor": "x.y", "role": "agent", "branch": A}, 403),
    ("admin", A, "DELETE", "/v1/tokens/{token B}", None, 404),
    ("admin", A, "DELETE", "/v1/tokens/ffffffff", None, 404),
    # webhooks: another branch's (or every branch's) subscription is not there
    ("admin", A, "DELETE", "/v1/webhooks/{hook root}", None, 404),
    ("admin", A, "POST", "/v1/webhooks/deliveries/1/retry", None, 404),
    # erasure: only a customer whose cases are all in the branch
    ("admin", A, "POST", "/v1/erasures", {"customer": "CUST-B", **ERASE}, 422),
    ("admin", A, "POST", "/v1/erasures", {"customer": "CUST-NOBODY", **ERASE}, 422),
    ("admin", A, "POST", "/v1/erasures", {"customer": "CUST-AB", **ERASE}, 403),
    ("admin", A, "POST", "/v1/erasures", {"customer": "CUST-A", **ERASE}, 200),
    ("admin", None, "POST", "/v1/erasures", {"customer": "CUST-AB", **ERASE}, 200),
    # the outbox: another branch's mail is not there; one's own is (pending: 422)
    ("admin", A, "POST", "/v1/outbox/{mail " + B + "}/retry", None, 404),
    ("admin", A, "POST", "/v1/outbox/{mail " + A + "}/retry", None, 409),  # not dead: a conflict
    # attachments: only of cases one may see
    ("supervisor", A, "GET", "/v1/attachments/{file beef0002}", None, 404),
    ("auditor", A, "GET", "/v1/attachments/{file beef0002}", None, 404),
    ("admin", A, "GET", "/v1/attachments/{file beef0002}", None, 404),
    ("supervisor", A, "GET", "/v1/attachments/{file ca5e-a}", None, 200),
    ("auditor", None, "GET", "/v1/attachments/{file beef0002}", None, 200),
    # partners and jobs: within the branch; auditors record nothing
    ("admin", A, "POST", "/v1/partners", PARTNER, 403),
    ("admin", A, "POST", "/v1/partners", {**PARTNER, "branch": A}, 201),
    ("auditor", None, "POST", "/v1/jobs", {**JOBS, "branch": A}, 403),
    ("auditor", A, "POST", "/v1/jobs", {**JOBS, "branch": A}, 403),
    ("supervisor", A, "POST", "/v1/jobs", {**JOBS, "branch": B}, 403),
    ("supervisor", A, "POST", "/v1/jobs", {**JOBS, "branch": A}, 201),
    # an auditor writes nothing anywhere
    ("auditor", None, "POST", "/v1/cases", {"customer": "C", **INTAKE}, 403),
    ("auditor", None, "POST", "/v1/cases/ca5e-a/events", {"event": "apologise"}, 403),
    ("auditor", None, "POST", "/v1/cases/ca5e-a/replan", None, 403),
    ("auditor", None, "POST", "/v1/webhooks", {"url": f"https://{HOOKS}/a"}, 403),
    ("auditor", None, "POST", "/v1/erasures", {"customer": "CUST-A", **ERASE}, 403),
    # cases of another branch are not there, for reading or writing
    ("agent", A, "GET", "/v1/cases/beef0002", None, 404),
    ("agent", A, "POST", "/v1/cases/beef0002/events", {"event": "apologise"}, 404),
]


def test_what_each_role_and_branch_may_do(world: World) -> None:
    wrong = []
    for role, branch, method, path, body, expected in TABLE:
        url = path.format(**dict(world.ids.items())) if "{" in path else path
        with world.client(role, branch) as http:
            answer = http.request(method, url, json=body)
        if answer.status_code != expected:
            wrong.append((role, branch, method, url, expected, answer.status_code, answer.text))
    assert wrong == []


def test_a_branch_admin_lists_only_its_branch(world: World) -> None:
    with world.client("admin", A) as http:
        tokens = http.get("/v1/tokens").json()
        assert tokens
        assert {t["branch"] for t in tokens} == {A}
        assert world.ids["token B"] not in {t["id"] for t in tokens}
        mails = http.get("/v1/outbox").json()
        assert {m["case_id"] for m in mails} == {"ca5e-a", "beef0001"}
        assert http.get("/v1/webhooks").json() == []
        assert http.get("/v1/webhooks/deliveries").json() == []
    with world.client("admin", None) as http:
        assert {m["case_id"] for m in http.get("/v1/outbox").json()} == {
            "ca5e-a", "beef0001", "beef0002", "ca5e-b", "f00d-b"
        }  # fmt: skip
        assert len(http.get("/v1/tokens").json()) > len(tokens)


def test_a_branch_admins_webhook_hears_only_its_branch(world: World) -> None:
    with world.client("admin", A) as http:
        made = http.post("/v1/webhooks", json={"url": f"https://{HOOKS}/branch-a"})
        assert made.status_code == 201, made.text
        assert made.json()["branch"] == A
        assert [h["id"] for h in http.get("/v1/webhooks").json()] == [made.json()["id"]]
    for case_id in ("ca5e-a", "beef0002"):
        with world.client("agent", None) as http:
            fired = http.post(f"/v1/cases/{case_id}/events", json={"event": "apologise"})
            assert fired.status_code == 200, fired.text
    store = world.api.engine.context.store
    heard = {
        m.case_id
        for m in store.outbox.rows(kind="webhook")
        if m.body["webhook"] == made.json()["id"]
    }
    assert heard == {"ca5e-a"}
    every = {
        m.case_id
        for m in store.outbox.rows(kind="webhook")
        if m.body["webhook"] != made.json()["id"]
    }
    assert {"ca5e-a", "beef0002"} <= every  # the subscription without a branch hears both
    with world.client("admin", A) as http:
        listed = http.get("/v1/webhooks/deliveries").json()
        assert {d["webhook"] for d in listed} == {made.json()["id"]}
    with world.client("admin", None) as http:
        assert len(http.get("/v1/webhooks").json()) == 2


def _link(http: httpx.Client, case_id: str, event: str, ref: str) -> httpx.Response:
    return http.post(f"/v1/cases/{case_id}/events", json={"event": event, "data": {"case": ref}})


def _same_answer(seen: httpx.Response, unknown: httpx.Response, ref: str, other: str) -> None:
    assert seen.status_code == unknown.status_code == 404
    assert seen.json()["detail"] == unknown.json()["detail"].replace(other, ref)


def test_prefixes_and_relations_resolve_only_within_the_branch(world: World) -> None:
    with world.client("agent", A) as http:
        # "beef" begins a case of each branch: within A it names beef0001 alone
        linked = _link(http, "ca5e-a", "link", "beef")
        assert linked.status_code == 200, linked.text
        history = http.get("/v1/cases/ca5e-a/history").json()
        assert history[-1]["data"]["case"] == "beef0001"
        # another branch's case, by prefix or in full, answers as one that does not exist
        for ref, unknown in (("beef0002", "beef0009"), ("ca5e-b", "ca5e-z"), ("f00d", "feed")):
            _same_answer(_link(http, "ca5e-a", "link", ref),
                         _link(http, "ca5e-a", "link", unknown), ref, unknown)  # fmt: skip
        merged = _link(http, "ca5e-a", "merge_into", "beef0002")
        _same_answer(merged, _link(http, "ca5e-a", "merge_into", "beef0009"), "beef0002",
                     "beef0009")  # fmt: skip
        everything = str(http.get("/v1/cases/ca5e-a/history").json())
        assert "beef0002" not in everything
        assert "ca5e-b" not in everything
        assert http.get("/v1/cases/ca5e-a").json()["state"] != "merged"
    with world.client("agent", None) as http:  # without a branch, every case is seen
        ambiguous = _link(http, "ca5e-a", "link", "beef")
        assert ambiguous.status_code == 422
        assert "beef0001" in ambiguous.text
        assert "beef0002" in ambiguous.text
        assert _link(http, "ca5e-a", "merge_into", "beef0002").status_code == 200


def _form_field(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, html
    return found.group(1)


def test_the_consoles_token_form_keeps_a_branch_admin_in_its_branch(world: World) -> None:
    api = world.api
    with httpx.Client(base_url=api.url, timeout=30) as browser:
        login = browser.get("/login").text
        form = {"token": api.token("admin", "it.branch", A)}
        if 'name="csrf"' in login:
            form["csrf"] = _form_field(login, "csrf")
        assert browser.post("/login", data=form).status_code in (200, 303)
        page = browser.get("/tokens")
        assert page.status_code == 200, page.text
        assert _form_field(page.text, "branch") == A  # the branch is fixed, shown read-only
        assert world.ids["token B"] not in page.text
        csrf = _form_field(page.text, "csrf")
        before = len(api.engine.context.store.access.tokens())
        for branch in ("", B):
            refused = browser.post("/tokens", data={"csrf": csrf, "actor": "x.y",
                                                    "role": "admin", "branch": branch})  # fmt: skip
            assert refused.status_code == 403, refused.text
        revoke = browser.post("/tokens", data={"csrf": csrf, "revoke": world.ids["token B"]})
        assert "no API token" in revoke.text
        assert len(api.engine.context.store.access.tokens()) == before
        assert all(t.revoked_at is None for t in api.engine.context.store.access.tokens())
        made = browser.post("/tokens", data={"csrf": csrf, "actor": "x.y", "role": "agent",
                                             "branch": A})  # fmt: skip
        assert made.status_code == 200
        assert 'id="made"' in made.text
        assert [t.branch for t in api.engine.context.store.access.tokens()][-1] == A


@contextmanager
def _console(world: World, role: str, branch: str | None, lang: str) -> Iterator[httpx.Client]:
    """A browser-like client signed in to the console with a token of ``role`` and
    ``branch``, reading pages in ``lang``."""
    api = world.api
    with httpx.Client(base_url=api.url, timeout=30, cookies={"lang": lang}) as browser:
        login = browser.get("/login").text
        form = {"token": api.token(role, "li.na", branch)}
        if 'name="csrf"' in login:
            form["csrf"] = _form_field(login, "csrf")
        assert browser.post("/login", data=form).status_code in (200, 303)
        yield browser


def test_opening_for_another_branch_is_refused_alike_by_the_api_and_the_console(
    world: World,
) -> None:
    engine = world.api.engine
    before = engine.page(CaseQuery(), limit=500).items
    elsewhere = {"customer": "CUST-X", "branch": B, **INTAKE}
    with world.client("agent", A) as http:
        refused = http.post("/v1/cases", json=elsewhere)
        assert refused.status_code == 422, refused.text
        reason = refused.json()["detail"]
        assert reason == f"a token of branch {A} opens cases of that branch (and its stores) only"
    for lang, said in (("en", f"A token of branch {A} opens cases"), ("zh", f"{A} 的令牌只能登记")):
        with _console(world, "agent", A, lang) as browser:
            page = browser.get("/open")
            assert _form_field(page.text, "branch") == A  # its own branch, offered
            form = {"csrf": _form_field(page.text, "csrf"), **elsewhere, "contact": "138 0000"}
            answer = browser.post("/open", data=form)
            assert answer.status_code == 200, answer.text  # the form again, not the case
            assert said in answer.text  # beside the form, in the page's language
            assert 'role="alert"' in answer.text
            for name in ("customer", "branch", "contact"):
                assert _form_field(answer.text, name) == form[name]  # what was typed is kept
    assert engine.page(CaseQuery(), limit=500).items == before  # nothing opened
    with _console(world, "agent", A, "en") as browser:
        page = browser.get("/open")
        form = {"csrf": _form_field(page.text, "csrf"), **elsewhere, "branch": A}
        opened = browser.post("/open", data=form)
        assert opened.status_code == 303, opened.text
        assert engine.get(opened.headers["location"].rsplit("/", 1)[1]).branch == A
    with world.client("agent", None) as headquarters:  # no branch: any branch
        assert headquarters.post("/v1/cases", json=elsewhere).json()["branch"] == B


PHONE = {"serial_number": "SN-864209", "product": "华为 Mate 60", "purchase_date": "2026-10-01"}


def test_a_repeat_is_found_only_among_the_callers_cases(world: World) -> None:
    engine = world.api.engine
    engine.open_case(customer="CUST-R", branch=B, actor="wu.fang", case_id="rep-b",
                     attributes=PHONE, **INTAKE)  # fmt: skip
    again = {"customer": "CUST-R", "attributes": PHONE, **INTAKE}
    with world.client("agent", A) as http:
        opened = http.post("/v1/cases", json=again).json()
        assert "repeat_of" not in opened["facts"]
        assert "rep-b" not in str(http.get(f"/v1/cases/{opened['id']}/history").json())
    with world.client("agent", None) as http:  # without a branch: the repeat is linked
        assert "repeat_of" in http.post("/v1/cases", json=again).json()["facts"]
