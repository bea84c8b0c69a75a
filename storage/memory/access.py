"""``store.access`` and ``store.service`` in memory: tokens, kept answers, console
sessions; workers' heartbeats and the figures ``/metrics`` publishes."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from casework.storage.errors import WriteConflict
from casework.storage.memory.rows import utc_times
from casework.storage.memory.tx import Role
from casework.storage.records import (
    WEBHOOK_KIND,
    Figures,
    Heartbeat,
    Remembered,
    SessionRecord,
    TokenRecord,
)
from casework.storage.timestamps import as_utc


class MemoryAccess(Role):
    """``store.access`` in memory: tokens, kept answers and console sessions."""

    def settle(self, token_id: str, key: str, answer: Remembered) -> None:
        with self._writing() as rows:
            kept = rows.answers.get((token_id, key))
            if kept is not None and kept.created_at == answer.created_at:
                rows.answers[token_id, key] = copy.deepcopy(answer)

    def forget(self, token_id: str, key: str) -> None:
        with self._writing() as rows:
            rows.answers.pop((token_id, key), None)

    def add_session(
        self,
        secret_hash: str,
        token_id: str,
        csrf: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        with self._writing() as rows:
            if secret_hash in rows.sessions:
                raise WriteConflict("a session with that cookie exists")
            rows.sessions[secret_hash] = (token_id, csrf, as_utc(created_at), as_utc(expires_at))

    def session(self, secret_hash: str) -> SessionRecord | None:
        rows = self._rows
        found = rows.sessions.get(secret_hash)
        if found is None or found[0] not in rows.tokens:
            return None
        return SessionRecord(rows.tokens[found[0]][0], found[1], found[3])

    def drop_session(self, secret_hash: str, now: datetime) -> None:
        now = as_utc(now)
        with self._writing() as rows:
            rows.sessions = {
                h: s for h, s in rows.sessions.items() if h != secret_hash and s[3] >= now
            }

    def add_token(self, token: TokenRecord, secret_hash: str) -> None:
        with self._writing() as rows:
            if token.id in rows.tokens or any(h == secret_hash for _, h in rows.tokens.values()):
                raise WriteConflict(f"token {token.id!r} or its secret exists")
            rows.tokens[token.id] = (utc_times(token), secret_hash)

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        return next((t for t, h in self._rows.tokens.values() if h == secret_hash), None)

    def tokens(self) -> list[TokenRecord]:
        return sorted(
            (t for t, _ in self._rows.tokens.values()), key=lambda t: (t.created_at, t.id)
        )

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord | None:
        with self._writing() as rows:
            if token_id not in rows.tokens:
                return None
            token, secret_hash = rows.tokens[token_id]
            if token.revoked_at is None:  # the first revocation's time stays
                token = replace(token, revoked_at=as_utc(at))
                rows.tokens[token_id] = (token, secret_hash)
            return token

    def recall(self, token_id: str, key: str) -> Remembered | None:
        return copy.deepcopy(self._rows.answers.get((token_id, key)))

    def remember(self, token_id: str, key: str, answer: Remembered) -> bool:
        with self._writing() as rows:
            if (token_id, key) in rows.answers:
                return False
            rows.answers[token_id, key] = utc_times(copy.deepcopy(answer))
        return True

    def take_over(self, token_id: str, key: str, held_since: datetime, now: datetime) -> bool:
        with self._writing() as rows:
            kept = rows.answers.get((token_id, key))
            if kept is None or kept.status != 0 or kept.created_at != as_utc(held_since):
                return False
            rows.answers[token_id, key] = replace(kept, created_at=as_utc(now))
        return True

    def forget_before(self, moment: datetime) -> int:
        moment = as_utc(moment)
        with self._writing() as rows:
            old = [k for k, a in rows.answers.items() if a.created_at < moment]
            for key in old:
                del rows.answers[key]
        return len(old)


class MemoryService(Role):
    """``store.service`` in memory: workers' heartbeats and the figures ``/metrics`` publishes."""

    def beat(self, worker: str, started_at: datetime, at: datetime) -> None:
        with self._writing() as rows:
            first = rows.beats.get(worker)
            started = as_utc(started_at) if first is None else first.started_at
            rows.beats[worker] = Heartbeat(worker, started, as_utc(at))

    def latest_beat(self) -> Heartbeat | None:
        return max(self._rows.beats.values(), key=lambda b: b.beat_at, default=None)

    def figures(self, now: datetime, lag_bounds: Sequence[float]) -> Figures:
        now = as_utc(now)
        rows = self._rows
        pending = [d for d in rows.deadlines.values() if d.status == "pending"]
        outbox: dict[tuple[str, str], int] = {}
        for mail in rows.outbox.values():
            outbox[mail.kind, mail.status] = outbox.get((mail.kind, mail.status), 0) + 1
        waiting = [m.created_at for m in rows.outbox.values()
                   if m.status in ("pending", "held") and m.kind != WEBHOOK_KIND]  # fmt: skip
        lags = [(d.fired_at - d.due_at).total_seconds() for d in rows.deadlines.values()
                if d.status == "fired" and d.fired_at is not None]  # fmt: skip
        return Figures(
            deadlines_pending=len(pending),
            deadlines_overdue=sum(d.due_at <= now for d in pending),
            outbox=outbox,
            oldest_pending_mail=min(waiting, default=None),
            fire_lag_buckets=[(b, sum(lag <= b for lag in lags)) for b in lag_bounds],
            fire_lag_count=len(lags),
            fire_lag_sum=float(sum(lags)),
        )
