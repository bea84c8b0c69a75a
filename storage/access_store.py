"""Who may use the HTTP API, and the answers it must repeat: tokens, idempotency keys and
console sessions, through SQLAlchemy Core."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select, update

from casework.storage.errors import WriteConflict
from casework.storage.records import Remembered, SessionRecord, TokenRecord
from casework.storage.tables import idempotency_table as answers
from casework.storage.tables import sessions_table as sessions
from casework.storage.tables import tokens_table as tokens
from casework.storage.transition_sql import TransitionSQL


class SqlAccess:
    """:class:`casework.storage.port.Access` on SQLite and PostgreSQL."""

    def __init__(self, sql: TransitionSQL) -> None:
        self.sql = sql

    def add_token(self, token: TokenRecord, secret_hash: str) -> None:
        """Store a token under the hash of its secret."""
        with self.sql.writing() as conn:
            conn.execute(insert(tokens).values(secret_hash=secret_hash, **token.as_row()))

    def token_by_hash(self, secret_hash: str) -> TokenRecord | None:
        """The token whose secret hashes to ``secret_hash``, revoked or not."""
        with self.sql.reading() as conn:
            row = conn.execute(select(tokens).where(tokens.c.secret_hash == secret_hash)).first()
            return None if row is None else TokenRecord.from_row(row)

    def tokens(self) -> list[TokenRecord]:
        """Every token, oldest first."""
        with self.sql.reading() as conn:
            rows = conn.execute(select(tokens).order_by(tokens.c.created_at, tokens.c.id))
            return [TokenRecord.from_row(row) for row in rows]

    def revoke_token(self, token_id: str, at: datetime) -> TokenRecord | None:
        """Revoke a token (once; a revoked one keeps its first time); the token, if any."""
        row = self.sql.end_once(tokens, token_id, "revoked_at", at)
        return None if row is None else TokenRecord.from_row(row)

    def recall(self, token_id: str, key: str) -> Remembered | None:
        """The answer kept for ``key`` of a token, if any."""
        with self.sql.reading() as conn:
            row = conn.execute(
                select(answers).where(answers.c.token_id == token_id, answers.c.key == key)
            ).first()
            if row is None:
                return None
            return Remembered(row.request_hash, row.status, row.body, row.location, row.created_at)

    def remember(self, token_id: str, key: str, answer: Remembered) -> bool:
        """Keep the answer to a request; ``False`` if one is kept for the key already."""
        try:
            with self.sql.writing() as conn:
                values: dict[str, Any] = {
                    "token_id": token_id,
                    "key": key,
                    "request_hash": answer.request_hash,
                    "status": answer.status,
                    "body": answer.body,
                    "location": answer.location,
                    "created_at": answer.created_at,
                }
                conn.execute(insert(answers).values(**values))
        except WriteConflict:
            return False
        return True

    def take_over(self, token_id: str, key: str, held_since: datetime, now: datetime) -> bool:
        """Hold ``key`` of a token from ``now``, if its placeholder still stands as it was
        since ``held_since`` (its request died); whether it was taken over."""
        with self.sql.writing() as conn:
            taken = conn.execute(
                update(answers)
                .where(
                    answers.c.token_id == token_id,
                    answers.c.key == key,
                    answers.c.status == 0,
                    answers.c.created_at == held_since,
                )
                .values(created_at=now)
            )
            return taken.rowcount == 1

    def settle(self, token_id: str, key: str, answer: Remembered) -> None:
        """Replace the placeholder kept for ``key`` of a token since ``answer.created_at``
        (none if another request took the key over since)."""
        with self.sql.writing() as conn:
            conn.execute(
                update(answers)
                .where(
                    answers.c.token_id == token_id,
                    answers.c.key == key,
                    answers.c.created_at == answer.created_at,
                )
                .values(
                    request_hash=answer.request_hash,
                    status=answer.status,
                    body=answer.body,
                    location=answer.location,
                )
            )

    def forget(self, token_id: str, key: str) -> None:
        """Drop the answer kept for ``key`` of a token."""
        with self.sql.writing() as conn:
            conn.execute(
                delete(answers).where(answers.c.token_id == token_id, answers.c.key == key)
            )

    def forget_before(self, moment: datetime) -> int:
        """Drop the answers kept since before ``moment``; how many."""
        with self.sql.writing() as conn:
            return conn.execute(delete(answers).where(answers.c.created_at < moment)).rowcount

    def add_session(
        self,
        secret_hash: str,
        token_id: str,
        csrf: str,
        created_at: datetime,
        expires_at: datetime,
    ) -> None:
        """Keep a console session under the hash of its cookie."""
        with self.sql.writing() as conn:
            conn.execute(
                insert(sessions).values(
                    secret_hash=secret_hash,
                    token_id=token_id,
                    csrf=csrf,
                    created_at=created_at,
                    expires_at=expires_at,
                )
            )

    def session(self, secret_hash: str) -> SessionRecord | None:
        """The session whose cookie hashes to ``secret_hash``, with its token."""
        with self.sql.reading() as conn:
            row = conn.execute(
                select(tokens, sessions.c.csrf, sessions.c.expires_at)
                .join(tokens, tokens.c.id == sessions.c.token_id)
                .where(sessions.c.secret_hash == secret_hash)
            ).first()
            if row is None:
                return None
            return SessionRecord(TokenRecord.from_row(row), row.csrf, row.expires_at)

    def drop_session(self, secret_hash: str, now: datetime) -> None:
        """End a session, and every session that ended before ``now``."""
        with self.sql.writing() as conn:
            conn.execute(
                delete(sessions).where(
                    (sessions.c.secret_hash == secret_hash) | (sessions.c.expires_at < now)
                )
            )
