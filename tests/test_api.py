"""The HTTP API on a real server on loopback: shapes, auth, problems, concurrency,
idempotency, paging, export, health and metrics."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

from casework.workflow.audit.export_check import verify_export
from casework.workflow.clock import FixedClock
from tests.support.api_server import Served

OPEN = {"customer": "CUST-1", "channel": "phone", "category": "service_delayed",
        "summary": "师傅没有按约上门", "branch": "东莞长安店"}  # fmt: skip
JSON_TYPE = {"content-type": "application/json"}


def test_an_agent_opens_reads_and_fires(api: Served) -> None:
    with api.client(api.token()) as http:
        opened = http.post("/v1/cases", json=OPEN)
        assert opened.status_code == 201
        case = opened.json()
        assert opened.headers["location"] == f"/v1/cases/{case['id']}"
        assert opened.headers["etag"] == '"1"'
        assert (case["owner"], case["branch"], case["state"]) == ("li.na", "东莞长安店", "received")
        read = http.get(f"/v1/cases/{case['id']}")
        assert read.json() == case
        assert read.headers["etag"] == '"1"'
        fired = http.post(f"/v1/cases/{case['id']}/events", json={"event": "apologise"},
                          headers={"If-Match": '"1"'})  # fmt: skip
        assert fired.status_code == 200
        assert fired.headers["etag"] == '"2"'
        assert fired.json()["state"] == "apologised"
        events = http.get(f"/v1/cases/{case['id']}/history").json()
        assert [(e["event"], e["actor"]) for e in events] == [
            ("open", "li.na"),
            ("apologise", "li.na"),
        ]
        sla = http.get(f"/v1/cases/{case['id']}/sla").json()
        assert sla["case_id"] == case["id"]
        assert {c["clock"] for c in sla["clocks"]} >= {"first_response", "resolution"}


def test_the_answers_are_the_command_lines_shapes(api: Served) -> None:
    with api.client(api.token("admin")) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        assert case == api.engine.get(case["id"]).to_json()
        events = http.get(f"/v1/cases/{case['id']}/history").json()
        assert events == [e.to_json() for e in api.engine.history(case["id"])]
        replay = http.get(f"/v1/cases/{case['id']}/replay").json()
        assert replay == api.engine.replay(case["id"]).to_json()
        assert http.get("/v1/verify").json() == api.engine.verify().to_json()


def test_problems_carry_the_errors_context(api: Served) -> None:
    with api.client(api.token()) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        path = f"/v1/cases/{case['id']}/events"
        http.post(path, json={"event": "apologise"})
        stale = http.post(path, json={"event": "confirm_needs"}, headers={"If-Match": '"1"'})
        assert stale.status_code == 412  # RFC 9110: If-Match names a version it is not at
        assert stale.headers["content-type"] == "application/problem+json"
        body = stale.json()
        assert body["type"] == "urn:casework:problem:precondition-failed"
        assert (body["case_id"], body["expected_version"], body["actual_version"]) == (
            case["id"],
            1,
            2,
        )
        wrong = http.post(path, json={"event": "reopen"}).json()
        assert wrong["status"] == 422
        assert (wrong["event"], wrong["state"]) == ("reopen", "apologised")
        assert "confirm_needs" in wrong["allowed"]
        http.post(path, json={"event": "confirm_needs"})
        guard = http.post(path, json={"event": "resolve"}).json()
        assert guard["type"] == "urn:casework:problem:guard-failed"
        assert guard["condition"]
        missing = http.get("/v1/cases/0123456789abcdef")
        assert missing.status_code == 404
        assert missing.json()["case_id"] == "0123456789abcdef"
        bad_match = http.post(path, json={"event": "note"}, headers={"If-Match": "W/x"})
        assert bad_match.status_code == 422
        assert bad_match.json()["field"] == "If-Match"
        for status, response in [
            (404, http.get("/v1/nothing-here")),
            (405, http.put("/v1/cases")),
            (400, http.post("/v1/cases", content=b"{not json", headers=JSON_TYPE)),
            (422, http.post("/v1/cases", json={"customer": 5})),
            (422, http.post("/v1/cases", json={**OPEN, "received_at": "2026-11-01T10:00:00"})),
            (422, http.get("/v1/cases", params={"limit": 0})),
            (422, http.get("/v1/cases", params={"cursor": "%%%"})),
            (413, http.post("/v1/cases", content=b"x" * (2 << 20), headers=JSON_TYPE)),
        ]:  # fmt: skip
            assert response.status_code == status, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == status


def test_the_actor_is_the_tokens(api: Served) -> None:
    with api.client(api.token(actor="wang.wei")) as http:
        refused = http.post("/v1/cases", json={**OPEN, "actor": "boss"})
        assert refused.status_code == 422
        assert "actor" in refused.json()["detail"]
        case = http.post("/v1/cases", json=OPEN).json()
        refused = http.post(
            f"/v1/cases/{case['id']}/events", json={"event": "apologise", "actor": "boss"}
        )
        assert refused.status_code == 422
        http.post(f"/v1/cases/{case['id']}/events", json={"event": "apologise"})
        assert [e.actor for e in api.engine.history(case["id"])] == ["wang.wei", "wang.wei"]


def test_tokens_and_roles(api: Served) -> None:
    agent, auditor = api.token("agent"), api.token("auditor", actor="audit.1")
    with api.client() as anonymous:
        refused = anonymous.get("/v1/cases")
        assert refused.status_code == 401
        assert refused.headers["www-authenticate"].startswith("Bearer")
        assert (
            anonymous.get("/v1/cases", headers={"Authorization": "Bearer cw_00_x"}).status_code
            == 401
        )
    with api.client(agent) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        assert http.get("/v1/verify").status_code == 403
        assert http.get("/v1/export").status_code == 403
        assert http.get(f"/v1/cases/{case['id']}/replay").status_code == 403
        assert http.get("/v1/webhooks").status_code == 403
        said = [http.get(path).json()["detail"] for path in ("/v1/export", "/v1/webhooks")]
        said.append(http.get("/v1/reports/sla").json()["detail"])
        assert said == [  # what is refused, in words
            "a token of role agent may not audit the history",
            "a token of role agent may not administer casework",
            "a token of role agent may not replay cases or read reports",
        ]
    with api.client(auditor) as http:
        before = api.engine.verify().to_json()
        assert http.post("/v1/cases", json=OPEN).status_code == 403
        assert (
            http.post(f"/v1/cases/{case['id']}/events", json={"event": "note"}).status_code == 403
        )
        assert http.get(f"/v1/cases/{case['id']}").status_code == 200
        assert http.get(f"/v1/cases/{case['id']}/replay").status_code == 200
        assert http.get("/v1/verify").json()["ok"] is True
        assert api.engine.verify().to_json() == before  # the auditor wrote nothing
    with api.client(api.token("admin")) as admin:
        token_id = agent.split("_")[1]
        assert admin.delete(f"/v1/tokens/{token_id}").json()["revoked_at"]
        made = admin.post("/v1/tokens", json={"actor": "zhao.lei", "role": "agent"}).json()
        assert made["token"].startswith("cw_")
        assert made["id"] in {t["id"] for t in admin.get("/v1/tokens").json()}
    with api.client(agent) as http:
        assert http.get("/v1/cases").status_code == 401  # revoked


def test_a_branch_token_sees_only_its_branch(api: Served) -> None:
    with api.client(api.token("admin")) as admin:
        other = admin.post("/v1/cases", json={**OPEN, "branch": "广州天河店"}).json()
    with api.client(api.token(branch="东莞长安店")) as http:
        mine = http.post("/v1/cases", json={**OPEN, "branch": None}).json()
        assert mine["branch"] == "东莞长安店"
        assert http.post("/v1/cases", json={**OPEN, "branch": "广州天河店"}).status_code == 422
        assert http.get(f"/v1/cases/{other['id']}").status_code == 404
        assert (
            http.post(f"/v1/cases/{other['id']}/events", json={"event": "note"}).status_code == 404
        )
        assert http.get(f"/v1/cases/{other['id']}/history").status_code == 404
        listed = http.get("/v1/cases").json()["items"]
        assert [c["id"] for c in listed] == [mine["id"]]
        assert http.get("/v1/cases", params={"branch": "广州天河店"}).json()["items"] == []


def test_idempotency_keys(api: Served, clock: FixedClock) -> None:
    with api.client(api.token()) as http:
        key = {"Idempotency-Key": "order-7781"}
        first = http.post("/v1/cases", json=OPEN, headers=key)
        again = http.post("/v1/cases", json=OPEN, headers=key)
        assert again.status_code == 201
        assert again.json() == first.json()
        assert again.headers["location"] == first.headers["location"]
        assert again.headers["idempotent-replayed"] == "true"
        assert len(api.engine.list()) == 1
        other = http.post("/v1/cases", json={**OPEN, "summary": "another"}, headers=key)
        assert other.status_code == 422
        assert other.json()["field"] == "Idempotency-Key"
        case_id = first.json()["id"]
        fire_key = {"Idempotency-Key": "fire-1"}
        http.post(f"/v1/cases/{case_id}/events", json={"event": "apologise"}, headers=fire_key)
        replayed = http.post(
            f"/v1/cases/{case_id}/events", json={"event": "apologise"}, headers=fire_key
        )
        assert replayed.status_code == 200
        assert len(api.engine.history(case_id)) == 2
        failed_key = {"Idempotency-Key": "fails"}
        assert (
            http.post(
                f"/v1/cases/{case_id}/events", json={"event": "reopen"}, headers=failed_key
            ).status_code
            == 422
        )
        clock.advance(timedelta(hours=25))
        later = http.post("/v1/cases", json=OPEN, headers=key)
        assert later.json()["id"] != case_id  # the key was kept 24 hours


def test_pages_follow_the_cursor(api: Served, clock: FixedClock) -> None:
    with api.client(api.token()) as http:
        opened = []
        for n in range(7):
            opened.append(http.post("/v1/cases", json={**OPEN, "customer": f"C-{n}"}).json()["id"])
            clock.advance(timedelta(minutes=1))
        seen, cursor = [], None
        while True:
            page = http.get(
                "/v1/cases", params={"limit": 3, **({"cursor": cursor} if cursor else {})}
            ).json()
            seen += [c["id"] for c in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == opened
        only = http.get("/v1/cases", params={"customer": "C-3"}).json()["items"]
        assert [c["customer"] for c in only] == ["C-3"]
        clock.advance(timedelta(days=4))
        api.engine.process_due()  # what the worker does
        late = http.get("/v1/cases", params={"overdue": "true", "limit": 5}).json()
        assert len(late["items"]) == 5
        assert late["items"][0]["late_by_s"] > 0
        rest = http.get(
            "/v1/cases", params={"overdue": "true", "cursor": late["next_cursor"]}
        ).json()
        assert len(late["items"]) + len(rest["items"]) == 14  # two clocks of seven cases


def test_the_export_streams_ndjson_that_verifies(api: Served, tmp_path: Path) -> None:
    with api.client(api.token()) as http:
        for n in range(3):
            case = http.post("/v1/cases", json={**OPEN, "customer": f"C-{n}"}).json()
            http.post(f"/v1/cases/{case['id']}/events", json={"event": "apologise"})
    with api.client(api.token("auditor")) as http, http.stream("GET", "/v1/export") as answer:
        assert answer.headers["content-type"] == "application/x-ndjson"
        path = tmp_path / "export.jsonl"
        with path.open("wb") as out:
            for chunk in answer.iter_bytes():
                out.write(chunk)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines[0]["record"] == "header"
    assert lines[-1]["record"] == "end"
    assert verify_export(path, api.engine.registry).ok


def test_webhook_subscriptions_over_http(api: Served) -> None:
    with api.client(api.token("admin")) as http:
        inside = http.post("/v1/webhooks", json={"url": "http://169.254.169.254/latest/"})
        assert inside.status_code == 422  # an internal address, not in allowed_hosts
        made = http.post(
            "/v1/webhooks",
            json={"url": "https://hooks.example.com/casework", "events": ["resolve"]},
        )
        assert made.status_code == 201
        assert made.json()["secret"].startswith("whsec_")
        listed = http.get("/v1/webhooks").json()
        assert [h["id"] for h in listed] == [made.json()["id"]]
        assert "secret" not in listed[0]
        assert http.post("/v1/webhooks", json={"url": "ftp://x"}).status_code == 422
        assert http.delete(f"/v1/webhooks/{made.json()['id']}").json()["removed_at"]
        assert http.delete("/v1/webhooks/nope").status_code == 404
        assert http.get("/v1/webhooks/deliveries").json() == []


def test_health_readiness_and_metrics(api: Served, clock: FixedClock) -> None:
    with api.client() as http:
        assert http.get("/healthz").json()["status"] == "ok"
        # no worker yet: the API serves all the same, and says so when asked
        ready = http.get("/readyz")
        assert ready.status_code == 200
        assert "worker" not in ready.json()["checks"]
        waiting = http.get("/readyz?worker=1")
        assert waiting.status_code == 503
        assert "worker" in waiting.json()["checks"]["worker"]
        api.engine.heartbeat("w1", clock.now())
        assert http.get("/readyz?worker=1").status_code == 200
        clock.advance(timedelta(minutes=5))
        assert http.get("/readyz?worker=1").status_code == 503
        assert http.get("/readyz").status_code == 200
    with api.client(api.token()) as http:
        case = http.post("/v1/cases", json=OPEN).json()
        http.post(f"/v1/cases/{case['id']}/events", json={"event": "apologise"})
        clock.advance(timedelta(days=3))
        assert api.engine.process_due()
        text = http.get("/metrics").text
    for name in (
        'casework_transitions_total{event="apologise"} 1.0',
        "casework_deadlines_pending",
        "casework_deadlines_overdue",
        'casework_fire_lag_seconds_bucket{le="+Inf"}',
        'casework_outbox_items{kind="warning",status="pending"}',
        "casework_dead_letters",
        "casework_oldest_pending_mail_age_seconds",
        'casework_http_requests_total{method="POST",route="/v1/cases/{case_id}/events",'
        'status="200"} 1.0',
        "casework_http_request_duration_seconds_bucket",
    ):
        assert name in text, name


def test_the_openapi_document(api: Served) -> None:
    with api.client() as http:
        document = http.get("/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for path in ("/v1/cases", "/v1/cases/{case_id}", "/v1/cases/{case_id}/events",
                 "/v1/cases/{case_id}/history", "/v1/cases/{case_id}/replay",
                 "/v1/cases/{case_id}/sla", "/v1/verify", "/v1/export", "/v1/webhooks",
                 "/v1/webhooks/{webhook_id}", "/healthz", "/readyz", "/metrics"):  # fmt: skip
        assert path in document["paths"], path
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            if path.startswith("/v1"):
                assert operation["security"] == [{"token": []}], (path, method)
                assert {"401", "403"} <= set(operation["responses"]), (path, method)
            assert operation.get("summary"), (path, method)


def test_the_business_reports(api: Served, clock: FixedClock) -> None:
    window = {"from": "2026-11-01T00:00:00+08:00", "to": "2026-12-01T00:00:00+08:00"}
    with api.client(api.token()) as http:
        http.post("/v1/cases", json=OPEN)
        assert http.get("/v1/reports/sla", params=window).status_code == 403
    with api.client(api.token("supervisor")) as http:
        sla = http.get("/v1/reports/sla", params=window)
        assert sla.status_code == 200
        assert sla.json()["cases"] == 1
        complaints = http.get("/v1/reports/complaints", params=window).json()
        assert complaints["by_category"][0]["category"] == "service_delayed"
        backwards = http.get("/v1/reports/sla", params={**window, "to": window["from"]})
        assert backwards.status_code == 422
    with api.client(api.token("supervisor", branch="东莞长安店")) as http:
        mine = http.get("/v1/reports/sla", params=window).json()
        assert (mine["branch"], mine["cases"]) == ("东莞长安店", 1)
        other = http.get("/v1/reports/sla", params={**window, "branch": "广州天河店"})
        assert other.status_code == 403
    with api.client(api.token("supervisor", branch="广州天河店")) as http:
        assert http.get("/v1/reports/sla", params={"month": "2026-11"}).json()["cases"] == 0


def test_partners_jobs_and_their_report(api: Served, clock: FixedClock) -> None:
    partner = {"id": "P-安装一队", "name": "长安安装一队", "kind": "installer"}
    with api.client(api.token("supervisor")) as http:
        assert http.post("/v1/partners", json=partner).status_code == 403  # admins register
    with api.client(api.token("admin")) as http:
        made = http.post("/v1/partners", json=partner)
        assert made.status_code == 201, made.text
        again = http.post("/v1/partners", json=partner)
        assert again.status_code == 409  # registered already: a conflict
    jobs = {"kind": "installation", "branch": "东莞长安店", "partner": "P-安装一队",
            "done_at": "2026-11-20T10:00:00+08:00", "jobs": 40}  # fmt: skip
    with api.client(api.token("supervisor", branch="广州天河店")) as http:
        assert http.post("/v1/jobs", json=jobs).status_code == 403  # another branch's
    with api.client(api.token("supervisor", branch="东莞长安店")) as http:
        recorded = http.post("/v1/jobs", json=jobs)
        assert recorded.status_code == 201, recorded.text
        assert recorded.json() == {"rows": 1, "jobs": 40}
    with api.client(api.token("auditor")) as http:
        assert [p["id"] for p in http.get("/v1/partners").json()] == ["P-安装一队"]
        report = http.get("/v1/reports/partners", params={"quarter": "2026Q4"})
        assert report.status_code == 200, report.text
        row = report.json()["partners"][0]
        assert (row["partner"], row["points"], row["jobs"]) == ("P-安装一队", 100, 40)
        bad = http.get("/v1/reports/partners", params={"quarter": "2026Q5"})
        assert bad.status_code == 422


def test_evidence_is_attached_and_read_back_by_its_digest(api: Served) -> None:
    import hashlib

    report = "检测报告 主板故障".encode()
    with api.client(api.token()) as http:
        case_id = http.post("/v1/cases", json=OPEN).json()["id"]
        attached = http.post(
            f"/v1/cases/{case_id}/attachments",
            params={"kind": "test_report", "name": "报告.pdf"},
            content=report,
            headers={"Content-Type": "application/octet-stream"},
        )
        assert attached.status_code == 201, attached.text
        digest = attached.json()["data"]["digest"]
        assert digest == hashlib.sha256(report).hexdigest()
        wrong = http.post(f"/v1/cases/{case_id}/attachments",
                          params={"kind": "selfie", "name": "x"}, content=b"x")  # fmt: skip
        assert wrong.status_code == 422
        assert http.get(f"/v1/attachments/{digest}").status_code == 403  # agents attach
    with api.client(api.token("auditor")) as http:
        got = http.get(f"/v1/attachments/{digest}")
        assert got.status_code == 200
        assert got.content == report
        assert http.get(f"/v1/attachments/{'0' * 64}").status_code == 404
        refused = http.post(f"/v1/cases/{case_id}/attachments",
                            params={"kind": "photo", "name": "p"}, content=b"p")  # fmt: skip
        assert refused.status_code == 403  # auditors write nothing


def test_an_admin_erases_a_customer_over_http(api: Served) -> None:
    with api.client(api.token()) as agent:
        case = agent.post("/v1/cases", json={**OPEN, "contact": "+86 138 0013 8000"}).json()
        refused = agent.post("/v1/erasures", json={"customer": OPEN["customer"], "reason": "x"})
        assert refused.status_code == 403
    with api.client(api.token("admin", actor="dpo")) as admin:
        body = {"customer": OPEN["customer"], "reason": "本人申请 #42", "dry_run": True}
        planned = admin.post("/v1/erasures", json=body).json()
        assert planned["cases"] == [case["id"]]
        assert api.engine.get(case["id"]).customer == OPEN["customer"]
        done = admin.post("/v1/erasures", json={**body, "dry_run": False})
        assert done.status_code == 200, done.text
        assert OPEN["customer"] not in done.text
        read = admin.get(f"/v1/cases/{case['id']}").json()
        assert (read["customer"], read["contact"]) == ("[erased]", "[erased]")
        assert admin.get(f"/v1/cases/{case['id']}/history").json()[-1]["actor"] == "dpo"
        assert admin.post("/v1/erasures", json=body).status_code == 422
