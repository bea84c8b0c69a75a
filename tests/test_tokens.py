"""Bearer tokens: shown once, stored as a hash, revoked for good."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from casework.workflow import Engine, NotAuthenticated, TokenNotFound
from casework.workflow.access.tokens import (
    ACTIONS,
    ALLOWED,
    authenticate,
    issue,
    revoke,
    secret_hash,
)
from casework.workflow.cli import main


def test_a_token_is_shown_once_and_kept_only_as_a_hash(engine: Engine) -> None:
    issued = issue(engine.context.store, "li.na", "agent", "东莞长安店", engine.clock.now())
    who = authenticate(engine.context.store, issued.token)
    assert (who.actor, who.role, who.branch) == ("li.na", "agent", "东莞长安店")
    with engine.db.connect() as conn:
        rows = [tuple(r) for r in conn.execute(text("SELECT * FROM api_tokens"))]
    assert issued.token not in repr(rows)
    assert secret_hash(issued.token) in repr(rows)


def test_an_unknown_missing_or_revoked_token_authenticates_nobody(engine: Engine) -> None:
    issued = issue(engine.context.store, "wang.wei", "auditor", None, engine.clock.now())
    for token in (None, "", "cw_00000000_nope", issued.token + "x"):
        with pytest.raises(NotAuthenticated):
            authenticate(engine.context.store, token)
    revoke(engine.context.store, issued.record.id, engine.clock.now())
    with pytest.raises(NotAuthenticated, match="revoked"):
        authenticate(engine.context.store, issued.token)
    with pytest.raises(TokenNotFound):
        revoke(engine.context.store, "ffffffff", engine.clock.now())


def test_roles_decide_what_a_token_may_do(engine: Engine) -> None:
    roles = {r: authenticate(engine.context.store, issue(engine.context.store, "a.b", r, None,
                                                 engine.clock.now()).token)
             for r in ("agent", "supervisor", "auditor", "admin")}  # fmt: skip
    assert [r for r, p in roles.items() if p.may("write")] == ["agent", "supervisor", "admin"]
    assert [r for r, p in roles.items() if p.may("audit")] == ["auditor", "admin"]
    assert [r for r, p in roles.items() if p.may("admin")] == ["admin"]


def test_the_tokens_commands(db_url: str) -> None:
    runner = CliRunner()
    made = runner.invoke(
        main, ["--db", db_url, "tokens", "create", "--actor", "li.na", "--role", "agent", "--json"]
    )
    assert made.exit_code == 0, made.output
    document = json.loads(made.stdout)
    assert document["token"].startswith(f"cw_{document['id']}_")
    listed = runner.invoke(main, ["--db", db_url, "tokens", "list", "--json"])
    assert [t["id"] for t in json.loads(listed.stdout)] == [document["id"]]
    assert "token" not in json.loads(listed.stdout)[0]
    gone = runner.invoke(main, ["--db", db_url, "tokens", "revoke", document["id"]])
    assert gone.exit_code == 0, gone.output
    bad = runner.invoke(
        main, ["--db", db_url, "tokens", "create", "--actor", "a@b", "--role", "agent"]
    )
    assert bad.exit_code == 2


def test_every_kind_of_thing_has_its_words_for_a_refusal() -> None:
    assert set(ACTIONS) == set(ALLOWED)
