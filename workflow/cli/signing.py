"""``casework checkpoint`` and ``casework keys``: signed statements of the history
(the ``signing`` extra)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import click

from casework.workflow.audit.checkpoints import (
    Checkpoint,
    load_private_key,
    make_checkpoint,
    new_key,
    rotate_key,
)
from casework.workflow.audit.private_files import private_file
from casework.workflow.cli.support import (
    CaseworkCommand,
    CaseworkSubgroup,
    database_options,
    display_zone,
    engine_for,
    handle_errors,
    typed_time,
)
from casework.workflow.display.times import stamped
from casework.workflow.errors import InvalidInput


def _key_path(key: str | None) -> str:
    path = key or os.environ.get("CASEWORK_SIGNING_KEY")
    if not path:
        raise InvalidInput("give --key FILE or set CASEWORK_SIGNING_KEY", field="key")
    return path


@click.group("keys", cls=CaseworkSubgroup)
def keys_group() -> None:
    """The Ed25519 key that signs checkpoints, and the keyring that verifies them.

    Keep the private key off the database server, readable only by the account that
    runs `casework checkpoint` (it is created 0600). Give auditors the keyring
    (KEY.pub by default): it holds every public key, old ones included.
    """


_KEY = click.option(
    "--key",
    default=None,
    type=click.Path(dir_okay=False),
    help="The private key file. Default: $CASEWORK_SIGNING_KEY.",
)
_KEYRING = click.option(
    "--keyring",
    default=None,
    type=click.Path(dir_okay=False),
    help="The public keyring file. Default: the key's path with .pub added.",
)


@keys_group.command("generate")
@_KEY
@_KEYRING
@handle_errors
def generate_command(key: str | None, keyring: str | None) -> None:
    """Create a new signing key (refused if the file exists) and add it to the keyring."""
    path = _key_path(key)
    made = new_key(path, keyring or f"{path}.pub", datetime.now(UTC), replace=False)
    click.echo(f"key {made} written to {path}; public key in {keyring or f'{path}.pub'}")


@keys_group.command("rotate")
@_KEY
@_KEYRING
@handle_errors
def rotate_command(key: str | None, keyring: str | None) -> None:
    """Replace the signing key with a new one; the keyring keeps the old public key."""
    path = _key_path(key)
    old, new = rotate_key(path, keyring or f"{path}.pub", datetime.now(UTC))
    click.echo(f"key {old} retired, key {new} now signs; both are in the keyring")


@click.command("checkpoint", cls=CaseworkCommand)
@_KEY
@click.option(
    "--at",
    default=None,
    metavar="ISO",
    help="The instant to state. Default: a minute ago, so that no transaction is still "
    "committing behind it.",
)
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write to this file.")
@click.option("--force", is_flag=True, help="Replace --out if it exists.")
@database_options
@handle_errors
def checkpoint_command(
    key: str | None,
    at: str | None,
    out: str | None,
    force: bool,
    db_url: str | None,
    config_path: str | None,
) -> None:
    """Sign a statement of the whole history recorded a minute ago (or by --at).

    It holds the database's identity, the instant, the numbers of cases and events and
    a Merkle root over every case's head hash. `casework verify --checkpoint FILE`
    later proves nothing recorded before it changed. Take one daily, and keep copies
    where the database's administrators cannot reach.
    """
    signing = load_private_key(_key_path(key))
    with engine_for(db_url, config_path, read_only=True, audit=True) as engine:
        moment = None if at is None else typed_time(at, "--at", engine)
        zone = display_zone(engine).zone
        checkpoint = make_checkpoint(engine.context, signing, moment)
    text = json.dumps(checkpoint.to_json(), indent=2) + "\n"
    if out is None:
        click.echo(text, nl=False)
        return
    with private_file(out, replace=force) as file:
        file.write(text)
    click.echo(
        f"checkpoint of {checkpoint.cases:,} cases, {checkpoint.events:,} events at "
        f"{stamped(checkpoint.at, zone)} signed by key {checkpoint.key_id}: {out}"
    )
    if checkpoint.replica is not None:
        click.echo(
            f"  taken on a standby that had replayed WAL {checkpoint.replica['replay_lsn']}, "
            f"committed by {stamped(checkpoint.replica['replayed_at'], zone)}"
        )


def read_checkpoint(path: str) -> Checkpoint:
    """The checkpoint in file ``path``; InvalidInput if unreadable or not one."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise InvalidInput(f"cannot read checkpoint {path}: {err.strerror}") from None
    except ValueError:
        raise InvalidInput(f"{path} is not a casework checkpoint: not JSON") from None
    return Checkpoint.from_json(document, path)
