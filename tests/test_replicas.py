"""A primary and a synchronous hot standby of its own (clusters made in a temporary
folder on loopback ports): reads and audits go to the standby, writes there are one
clear line, a checkpoint taken there states the replay position it covers, and the
lag shows in readiness and metrics."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from casework.workflow import Engine
from casework.workflow.cli import main
from tests.support import open_sample
from tests.support.pg_cluster import Cluster, primary_and_standby

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[Cluster, Cluster]]:
    with primary_and_standby() as clusters:
        yield clusters


def _cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_reads_go_to_the_standby_and_writes_there_are_refused(
    pair: tuple[Cluster, Cluster], tmp_path: Path
) -> None:
    primary, standby = pair
    with Engine.open(primary.url("casework")) as engine:
        case_id = open_sample(engine, customer="张伟", branch="东莞长安店")
    read = ("--db", primary.url("casework"), "--read-db", standby.url("casework"))
    code, out, _ = _cli(*read, "list", "--json")
    assert code == 0
    assert case_id in {c["id"] for c in json.loads(out)}  # synchronous: already replayed
    code, out, _ = _cli(*read, "verify", "--json")
    assert code == 0
    assert json.loads(out)["ok"]
    code, out, _ = _cli(*read, "report", "sla", "--last", "7d", "--json")
    assert code == 0
    # a command that writes ignores --read-db; pointed at the standby it is one line
    code, _, err = _cli("--db", standby.url("casework"), "fire", case_id, "apologise",
                        "--actor", "li.na")  # fmt: skip
    assert code == 1
    assert len(err.strip().splitlines()) == 1
    assert "read-only" in err or "refuses writes" in err
    key = tmp_path / "k.key"
    assert _cli("keys", "generate", "--key", str(key))[0] == 0
    out_file = tmp_path / "cp.json"
    code, out, err = _cli(*read, "checkpoint", "--key", str(key), "--out", str(out_file))
    assert code == 0, err
    assert "taken on a standby that had replayed WAL" in out
    statement = json.loads(out_file.read_text())["statement"]
    assert statement["replica"]["replay_lsn"]
    assert statement["at"] < statement["replica"]["replayed_at"]
    code, out, err = _cli("--db", primary.url("casework"), "verify", "--checkpoint",
                          str(out_file), "--keyring", f"{key}.pub")  # fmt: skip
    assert code == 0, out + err


def test_readiness_and_metrics_show_the_standbys_lag(pair: tuple[Cluster, Cluster]) -> None:
    from tests.support.api_server import serving

    primary, standby = pair
    with (
        Engine.open(primary.url("casework")) as engine,
        Engine.open(standby.url("casework"), read_only=True) as reader,
        serving(engine, read_engine=reader) as served,
        served.client(served.token("supervisor")) as http,
    ):
        case_id = open_sample(engine, customer="李娜")  # written to the primary
        ready = http.get("/readyz").json()
        metrics = http.get("/metrics").text
        listed = http.get("/v1/cases").json()["items"]  # read from the standby
    assert case_id in {c["id"] for c in listed}
    assert ready["replication"]["role"] == "standby"
    assert ready["checks"]["replication"] == "ok"
    assert 'casework_replication_lag_seconds{standby="read"}' in metrics
