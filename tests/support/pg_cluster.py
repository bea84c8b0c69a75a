"""Throwaway PostgreSQL clusters on loopback ports in a temporary folder: a primary, a
streaming standby of it, promoted or killed as a test needs (Debian's PostgreSQL 15
binaries, run as the ``postgres`` user when the tests run as root)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support import gone, wait_until

PG_BIN = Path(os.environ.get("CASEWORK_PG_BIN", "/usr/lib/postgresql/15/bin"))


def missing() -> str | None:
    """Why clusters cannot be made here, or ``None``."""
    for tool in ("initdb", "pg_ctl", "pg_basebackup", "postgres"):
        if not (PG_BIN / tool).exists():
            return f"PostgreSQL server binaries not found in {PG_BIN} (apt install postgresql)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser (to run PostgreSQL as postgres) is missing"
    return None


def free_port() -> int:
    """A loopback port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class Cluster:
    """One PostgreSQL server: its data folder and port."""

    def __init__(self, root: Path, name: str, port: int | None = None) -> None:
        self.root = root
        self.data = root / name
        self.port = port or free_port()
        self.log = root / f"{name}.log"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        done = subprocess.run(
            _as_postgres([str(PG_BIN / tool), *args]),
            capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"{tool} {' '.join(args)}: {done.stderr or done.stdout}")
        return done.stdout

    def _own(self) -> None:
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")

    def _configure(self, extra: str = "") -> None:
        with (self.data / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write(
                f"\nport = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nwal_level = replica\n"
                "max_wal_senders = 10\nhot_standby = on\nfsync = off\n"
                "shared_buffers = 32MB\nmax_connections = 60\n" + extra
            )

    def init(self) -> Cluster:
        """A new primary."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._own()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust",
                  "-E", "UTF8", "--locale=C.UTF-8")  # fmt: skip
        with (self.data / "pg_hba.conf").open("a", encoding="utf-8") as hba:
            hba.write("host all all 127.0.0.1/32 trust\nhost replication all 127.0.0.1/32 trust\n")
        self._configure()
        return self

    def standby(self, name: str, *, synchronous: bool = False) -> Cluster:
        """A streaming hot standby of this server, started (synchronous: the primary
        acknowledges a commit only once the standby applied it)."""
        other = Cluster(self.root, name)
        self._run("pg_basebackup", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres",
                  "-D", str(other.data), "-R", "-X", "stream",
                  "--checkpoint=fast", f"--label={name}")  # fmt: skip
        auto = other.data / "postgresql.auto.conf"
        text = auto.read_text(encoding="utf-8").replace(
            "primary_conninfo = '", f"primary_conninfo = 'application_name={name} "
        )
        auto.write_text(text, encoding="utf-8")
        other._configure()
        other.start()
        if synchronous:
            self.sql(f"ALTER SYSTEM SET synchronous_standby_names = '{name}'")
            self.sql("ALTER SYSTEM SET synchronous_commit = 'remote_apply'")
            self.sql("SELECT pg_reload_conf()")
        return other

    def start(self) -> Cluster:
        """Start it and wait until it answers."""
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        """Stop it, if it runs."""
        pid_file = self.data / "postmaster.pid"
        if not pid_file.exists():
            return
        try:
            os.kill(int(pid_file.read_text().split()[0]), 0)
        except (ProcessLookupError, ValueError):
            return  # killed: nothing runs
        self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend, as a machine that dies would."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        children = Path(f"/proc/{pid}/task/{pid}/children")
        backends = children.read_text().split() if children.exists() else []
        os.kill(pid, signal.SIGKILL)
        for child in backends:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(child), signal.SIGKILL)
        wait_until(lambda: all(gone(p) for p in (pid, *map(int, backends))), what="the kill")

    def promote(self) -> None:
        """Make this standby the primary."""
        self._run("pg_ctl", "-D", str(self.data), "-w", "promote")

    def sql(self, statement: str, database: str = "postgres") -> str:
        """Run one statement as postgres; its output."""
        import psycopg

        with psycopg.connect(self.dsn(database), autocommit=True) as conn:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
        return "\n".join("|".join(str(v) for v in row) for row in rows)

    def dsn(self, database: str = "postgres") -> str:
        """Its libpq URL for ``database``."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """Its SQLAlchemy URL for ``database``."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"


@contextmanager
def primary_and_standby() -> Iterator[tuple[Cluster, Cluster]]:
    """A primary with a database ``casework`` and a synchronous hot standby of it, in a
    folder of their own (where the ``postgres`` user may go), removed afterwards. Skips
    where clusters cannot be made here, and fails under ``CI=true``."""
    import pytest

    reason = missing()
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"clusters are required under CI: {reason}")
        pytest.skip(reason)
    root = Path(tempfile.mkdtemp(prefix="casework-clusters-"))
    primary = Cluster(root, "primary").init().start()
    primary.sql("CREATE DATABASE casework")
    standby = primary.standby("standby", synchronous=True)
    try:
        yield primary, standby
    finally:
        standby.stop()
        primary.stop()
        shutil.rmtree(root, ignore_errors=True)
