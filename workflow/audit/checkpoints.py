"""Signed checkpoints: a statement of the whole history at an instant, signed Ed25519.

A checkpoint names the database (its random identity), the instant ``at``, how many
cases and events were recorded by then, and the Merkle root (RFC 6962) over every
case's head at that instant: one leaf per case, in case id order, of
``case_id "\\n" seq "\\n" hash`` of its last event recorded at or before ``at``. Anyone
with write access to the database can recompute a chain with fresh hashes after
editing it; they cannot make its head hash come out the same, nor sign a new root
without the private key, which never lives in the database.

Keys: the private key is a PEM file (PKCS #8, created 0600; a key file others can
read is refused). Public keys are kept in a keyring, a text file of lines
``ed25519 <key id> <base64 public key> <created at>``; the key id is the first 16 hex
digits of the SHA-256 of the public key. Rotating a key adds the new public key to
the keyring and keeps the old ones, so older checkpoints still verify.
"""

from __future__ import annotations

import base64
import hashlib
import stat
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from casework.storage import canonical_json, iso
from casework.storage.merkle import MerkleTree
from casework.storage.port import Store
from casework.workflow.audit.private_files import private_file
from casework.workflow.audit.verification import verify
from casework.workflow.clock import aware
from casework.workflow.errors import InvalidInput, TimeOutOfOrder
from casework.workflow.files import read_capped, read_text
from casework.workflow.results import CHECKPOINT, Problem, VerifyReport

if TYPE_CHECKING:
    from casework.workflow.context import Context

FORMAT = "casework-checkpoint"
VERSION = 1
ALGORITHM = "ed25519"
KEY_FILE_BYTES = 64 << 10
"""The largest signing key file read (a PEM Ed25519 key has 119 bytes)."""


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement of the history at ``at``."""

    database: str
    at: datetime
    cases: int
    events: int
    root: str
    key_id: str
    signature: str = ""
    replica: Mapping[str, Any] | None = None
    """Taken on a hot standby: the WAL position it had replayed (``replay_lsn``) and the
    commit instant of the last transaction replayed (``replayed_at``)."""

    def statement(self) -> dict[str, Any]:
        """The signed part."""
        replica = {} if self.replica is None else {"replica": dict(self.replica)}
        return {
            **replica,
            "format": FORMAT,
            "version": VERSION,
            "algorithm": ALGORITHM,
            "database": self.database,
            "at": iso(self.at),
            "cases": self.cases,
            "events": self.events,
            "root": self.root,
            "key_id": self.key_id,
        }

    def to_json(self) -> dict[str, Any]:
        """The file's content: the statement and its signature."""
        return {"statement": self.statement(), "signature": self.signature}

    @classmethod
    def from_json(cls, document: Any, source: str) -> Checkpoint:
        """Read a checkpoint file's content; :class:`InvalidInput` if it is not one."""
        try:
            statement = document["statement"]
            if statement["format"] != FORMAT or statement["algorithm"] != ALGORITHM:
                raise ValueError("not a casework checkpoint")
            if statement["version"] != VERSION:
                raise ValueError(f"checkpoint format version {statement['version']}")
            return cls(
                database=str(statement["database"]),
                at=datetime.fromisoformat(statement["at"]),
                cases=int(statement["cases"]),
                events=int(statement["events"]),
                root=str(statement["root"]),
                key_id=str(statement["key_id"]),
                signature=str(document["signature"]),
                replica=statement.get("replica"),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise InvalidInput(f"{source} is not a casework checkpoint: {err}") from None


def _raw(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """The first 16 hex digits of the SHA-256 of the raw public key."""
    return hashlib.sha256(_raw(public)).hexdigest()[:16]


def _keyring_line(public: Ed25519PublicKey, created: datetime) -> str:
    encoded = base64.b64encode(_raw(public)).decode()
    return f"{ALGORITHM} {key_id(public)} {encoded} {iso(created)}\n"


def read_keyring(path: str | Path) -> dict[str, Ed25519PublicKey]:
    """The public keys of a keyring file by key id."""
    file = Path(path)
    text = read_text(file, "keyring", what="keyring", field="keyring")
    return keyring_from_text(text, str(file))


def keyring_from_text(text: str, source: str) -> dict[str, Ed25519PublicKey]:
    """The public keys of a keyring's text by key id; errors name ``source`` and line."""
    keys = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split()
        try:
            if parts[0] != ALGORITHM:
                raise ValueError(parts[0])
            public = Ed25519PublicKey.from_public_bytes(base64.b64decode(parts[2], validate=True))
        except (IndexError, ValueError) as err:
            raise InvalidInput(f"{source}:{number}: not a keyring line ({err})") from None
        keys[key_id(public)] = public
    return keys


def load_private_key(path: str | Path) -> Ed25519PrivateKey:
    """The signing key in ``path``, refused if the file is readable by others."""
    file = Path(path)
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError as err:
        raise InvalidInput(f"cannot read signing key {file}: {err.strerror}", field="key") from None
    if mode & 0o077:
        raise InvalidInput(
            f"signing key {file} is open to others (mode {mode:04o}); chmod 600 it", field="key"
        )
    data = read_capped(file, KEY_FILE_BYTES, what="signing key", field="key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError):
        raise InvalidInput(f"{file} is not a PEM private key", field="key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InvalidInput(f"{file} is not an Ed25519 key", field="key")
    return key


def new_key(path: str | Path, keyring: str | Path, now: datetime, *, replace: bool) -> str:
    """Write a fresh private key to ``path`` and add its public half to ``keyring``."""
    key = Ed25519PrivateKey.generate()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    ring = Path(keyring)
    line = _keyring_line(key.public_key(), now)
    kept = read_text(ring, "keyring", what="keyring", field="keyring") if ring.exists() else ""
    if kept and not kept.endswith("\n"):
        kept += "\n"
    # Both files whole or neither: each is written beside itself and renamed into place
    # only once complete; a full disk leaves the key and keyring as they were.
    with private_file(path, replace=replace, binary=True, field="key") as file:
        file.write(pem)  # type: ignore[arg-type]
        with private_file(ring, replace=True, field="keyring") as out:
            out.write(kept + line)
    return key_id(key.public_key())


def rotate_key(path: str | Path, keyring: str | Path, now: datetime) -> tuple[str, str]:
    """Replace the key in ``path`` with a new one; the keyring keeps both public keys."""
    old = load_private_key(path)
    ring = Path(keyring)
    known = read_keyring(ring) if ring.exists() else {}
    if key_id(old.public_key()) not in known:
        kept = read_text(ring, "keyring", what="keyring", field="keyring") if ring.exists() else ""
        with private_file(ring, replace=True, field="keyring") as out:
            out.write(kept + ("\n" if kept and not kept.endswith("\n") else ""))
            out.write(_keyring_line(old.public_key(), now))
    return key_id(old.public_key()), new_key(path, keyring, now, replace=True)


def history_root(store: Store, at: datetime) -> tuple[int, int, str]:
    """(cases, events, Merkle root in hex) of everything recorded at or before ``at``."""
    tree = MerkleTree()
    with store.audit.case_heads(at) as heads:
        for case_id, seq, digest in heads:
            tree.add(f"{case_id}\n{seq}\n{digest}".encode())
        events = heads.events
    return tree.size, events, tree.root().hex()


def signed(statement: Mapping[str, Any], key: Ed25519PrivateKey) -> str:
    """The base64 Ed25519 signature over the canonical JSON of ``statement``."""
    return base64.b64encode(key.sign(canonical_json(statement).encode())).decode()


def statement_problem(
    statement: Mapping[str, Any],
    key: str,
    signature: Any,
    keys: Mapping[str, Ed25519PublicKey],
    what: str,
) -> str | None:
    """Why ``signature`` by key id ``key`` over ``statement`` does not hold (``None``
    when it does); ``what`` names the signed thing in the reason."""
    public = keys.get(key)
    if public is None:
        return f"signed by key {key}, which is not in the keyring"
    try:
        public.verify(
            base64.b64decode(str(signature), validate=True), canonical_json(statement).encode()
        )
    except (InvalidSignature, ValueError):
        return f"the signature does not match the statement: the {what} was altered"
    return None


def sign(checkpoint: Checkpoint, key: Ed25519PrivateKey) -> Checkpoint:
    """The checkpoint with its signature over the canonical JSON of its statement."""
    signature = signed(checkpoint.statement(), key)
    return Checkpoint(**{**checkpoint.__dict__, "signature": signature})


def signature_problem(checkpoint: Checkpoint, keys: dict[str, Ed25519PublicKey]) -> str | None:
    """Why the signature does not hold, or ``None`` when it does."""
    return statement_problem(
        checkpoint.statement(), checkpoint.key_id, checkpoint.signature, keys, "checkpoint"
    )


def export_signer(key: Ed25519PrivateKey) -> Callable[[Mapping[str, Any]], dict[str, str]]:
    """What signs an export's end statement with ``key``: its key id and signature."""
    identity = key_id(key.public_key())
    return lambda statement: {"key_id": identity, "value": signed(statement, key)}


LAG = timedelta(minutes=1)
"""How far behind now a checkpoint is taken by default."""


def make_checkpoint(
    context: Context, key: Ed25519PrivateKey, at: datetime | None = None
) -> Checkpoint:
    """Sign a statement of everything ``engine``'s database recorded by ``at`` (by
    default :data:`LAG` ago, so that no transaction still committing falls behind it).

    An instant in the future is refused: every later write would then stand against
    the signed root as a false alarm of tampering.
    """
    now = context.clock.now()
    given = at is not None
    at = now - LAG if at is None else aware(at, "at")
    if at > now:
        raise TimeOutOfOrder(
            f"a checkpoint states what was recorded by an instant that has passed; "
            f"{iso(at)} lies in the future (now is {iso(now)})",
            field="at",
        )
    database = context.store.database_id()
    if database is None:
        raise InvalidInput("the database has no identity: upgrade its schema first")
    at, replica = _replayed_by(context, at, given)
    cases, events, root = history_root(context.store, at)
    identity = key_id(key.public_key())
    return sign(Checkpoint(database, at, cases, events, root, identity, replica=replica), key)


def _replayed_by(
    context: Context, at: datetime, given: bool
) -> tuple[datetime, dict[str, Any] | None]:
    """On a hot standby, the instant a checkpoint may state (what the standby replayed,
    less :data:`LAG` for transactions still committing then) and the replay position it
    covers; elsewhere ``at`` as it is."""
    state = context.store.audit.replication()
    if state is None or state["role"] != "standby":
        return at, None
    replayed = state["replayed_at"]
    if replayed is None:
        raise InvalidInput("this standby has replayed no transaction yet: nothing to state")
    limit = replayed - LAG
    if at > limit:
        if given:
            raise TimeOutOfOrder(
                f"this standby has replayed what was committed by {iso(replayed)}; a "
                f"checkpoint taken on it can state the history up to {iso(limit)}, not "
                f"{iso(at)}",
                field="at",
            )
        at = limit
    return at, {"replay_lsn": state["replay_lsn"], "replayed_at": iso(replayed)}


def check_checkpoint(
    context: Context, checkpoint: Checkpoint, keys: dict[str, Ed25519PublicKey]
) -> VerifyReport:
    """Whether the database still holds what the checkpoint signed, and every chain holds."""
    problem = signature_problem(checkpoint, keys)
    if problem is not None:
        return VerifyReport(0, 0, (Problem(CHECKPOINT, None, problem),))
    database = context.store.database_id()
    if database != checkpoint.database:
        reason = (
            f"the checkpoint is of database {checkpoint.database}, this is {database}: "
            "a checkpoint of another database"
        )
        return VerifyReport(0, 0, (Problem(CHECKPOINT, None, reason),))
    problems: list[Problem] = []
    cases, events, root = history_root(context.store, checkpoint.at)
    holds = (cases, events, root) == (checkpoint.cases, checkpoint.events, checkpoint.root)
    checked = {
        "key_id": checkpoint.key_id,
        "signature": "valid",
        "at": iso(checkpoint.at),
        "cases": checkpoint.cases,
        "events": checkpoint.events,
        "root": checkpoint.root,
        "history_holds": holds,
    }
    if not holds:
        problems.append(
            Problem(
                CHECKPOINT,
                None,
                f"the history recorded by {iso(checkpoint.at)} no longer matches the "
                f"checkpoint: {checkpoint.cases} cases, {checkpoint.events} events, root "
                f"{checkpoint.root[:16]}... were signed; now {cases} cases, {events} events, "
                f"root {root[:16]}...: something recorded before it was changed, removed, "
                "added or reordered",
            )
        )
    chains = verify(context)
    return VerifyReport(chains.cases, chains.events, (*problems, *chains.problems), checked)
