"""The port's contract: partners, dispatched jobs, the events ratings read, and evidence
files kept by digest."""

from __future__ import annotations

import hashlib

import pytest

from casework.storage.port import Store
from casework.storage.records import JobCount, PartnerRecord
from tests.contract.rows import H, moved, opened
from tests.support import START


@pytest.mark.covers("partners.add", "partners.registered")
def test_a_partner_is_kept_once_by_id(store: Store) -> None:
    fixer = PartnerRecord("P-2", "安装队", "installer", "东莞长安店", START)
    maker = PartnerRecord("P-1", "美的", "manufacturer", None, START + H)
    assert store.partners.add(fixer) is True
    assert store.partners.add(maker) is True
    assert store.partners.add(PartnerRecord("P-2", "other", "repairer", None, START)) is False
    assert store.partners.registered() == [maker, fixer]


@pytest.mark.covers("partners.add_jobs", "partners.job_counts")
def test_jobs_are_summed_by_kind_branch_category_and_partner_in_a_period(store: Store) -> None:
    def job(kind: str, branch: str, partner: str, at: object, jobs: int) -> dict[str, object]:
        return {"kind": kind, "branch": branch, "category": "aircon", "partner": partner,
                "done_at": at, "jobs": jobs, "source": "jobs.csv"}  # fmt: skip

    assert store.partners.add_jobs([
        job("install", "B", "P1", START, 3), job("install", "B", "P1", START + H, 4),
        job("repair", "B", "P1", START, 2), job("install", "A", "P2", START, 5),
        job("install", "A", "P2", START + 30 * H, 7),
    ]) == 21  # fmt: skip
    assert store.partners.add_jobs([]) == 0
    assert store.partners.job_counts(START, START + 24 * H) == [
        JobCount("install", "A", "aircon", "P2", 5),
        JobCount("install", "B", "aircon", "P1", 7),
        JobCount("repair", "B", "aircon", "P1", 2),
    ]
    assert store.partners.job_counts(START + H, START + 2 * H) == [
        JobCount("install", "B", "aircon", "P1", 4)
    ]
    assert store.partners.job_counts(START + 40 * H, START + 50 * H) == []


@pytest.mark.covers("cases.named_events")
def test_named_events_are_all_of_a_case_that_had_one_in_the_period(store: Store) -> None:
    opened(store, "c1", "c2", "c3")
    moved(store, "c1", "visit", "received", START + H, {"partner": "P1"})
    moved(store, "c1", "note", "received", START + 2 * H)
    moved(store, "c1", "visit", "received", START + 10 * H, {"partner": "P1"})
    moved(store, "c2", "visit", "received", START + H)
    moved(store, "c3", "note", "received", START + 10 * H)
    found = store.cases.named_events(START + 5 * H, START + 20 * H, ["visit"])
    assert list(found) == ["c1"]
    assert [(e.seq, e.event, e.data) for e in found["c1"]] == [
        (2, "visit", {"partner": "P1"}),
        (4, "visit", {"partner": "P1"}),
    ]
    assert sorted(store.cases.named_events(START, START + 2 * H, ["visit", "note"])) == ["c1", "c2"]
    assert store.cases.named_events(START, START + 20 * H, ["other"]) == {}


@pytest.mark.covers("attachments.put", "attachments.get", "attachments.cases")
def test_a_file_is_kept_once_by_digest_and_found_from_the_cases_attaching_it(
    store: Store,
) -> None:
    content = "发票照片".encode() * 100
    digest = hashlib.sha256(content).hexdigest()
    assert store.attachments.put(digest, content, START) is True
    assert store.attachments.put(digest, b"other", START + H) is False
    assert store.attachments.get(digest) == content
    assert store.attachments.get("0" * 64) is None
    opened(store, "c1", "c2", "c3")
    moved(store, "c2", "attach", "received", START + H, {"digest": digest, "name": "a.jpg"})
    moved(store, "c1", "attach", "received", START + H, {"digest": digest})
    moved(store, "c3", "note", "received", START + H, {"text": f"see {digest}"})
    assert [c.id for c in store.attachments.cases(digest)] == ["c1", "c2"]
    assert store.attachments.cases("0" * 64) == []
