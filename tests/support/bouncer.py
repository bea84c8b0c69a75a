"""A pgbouncer of the tests' own in transaction pooling mode, in front of the
machine's PostgreSQL, on a free loopback port (run as ``postgres``: it refuses root)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import psycopg

from tests.support import gone, wait_until
from tests.support.pg_cluster import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def missing() -> str | None:
    """Why a bouncer cannot run here, or ``None``."""
    if not Path(PGBOUNCER).exists():
        return "pgbouncer is not installed (apt install pgbouncer)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root, and runuser (to run pgbouncer as postgres) is missing"
    return None


class Bouncer:
    """pgbouncer in transaction pooling mode before ``server`` (host, port)."""

    def __init__(self, server: tuple[str, int]) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="casework-bouncer-"))
        self.port = free_port()
        (self.root / "users.txt").write_text('"postgres" ""\n', encoding="utf-8")
        (self.root / "pgbouncer.ini").write_text(
            "[databases]\n"
            f"* = host={server[0]} port={server[1]}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\n"
            f"unix_socket_dir = {self.root}\n"
            f"auth_type = trust\nauth_file = {self.root / 'users.txt'}\n"
            "pool_mode = transaction\nmax_client_conn = 500\ndefault_pool_size = 20\n"
            # idle server connections go soon: a test run shares the server's 100 slots
            "server_idle_timeout = 5\n"
            "ignore_startup_parameters = extra_float_digits,options\n"
            f"logfile = {self.root / 'pgbouncer.log'}\npidfile = {self.root / 'pgbouncer.pid'}\n",
            encoding="utf-8",
        )
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            for path in self.root.iterdir():
                shutil.chown(path, "postgres", "postgres")
        command = [PGBOUNCER, "-d", str(self.root / "pgbouncer.ini")]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, timeout=30, capture_output=True)
        wait_until(self._answers, tolerate=(psycopg.Error,), what="pgbouncer to answer")

    def _answers(self) -> bool:
        with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
            return True

    def dsn(self, database: str) -> str:
        """A libpq URL through the bouncer."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def url(self, database: str) -> str:
        """A casework URL through the bouncer: no session state relied on."""
        return (
            f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}?pool_mode=transaction"
        )

    def stop(self) -> None:
        """Stop it and remove its folder."""
        pid = self.root / "pgbouncer.pid"
        if pid.exists():
            number = int(pid.read_text().split()[0])
            os.kill(number, 15)
            wait_until(lambda: gone(number), what="pgbouncer to stop")
        shutil.rmtree(self.root, ignore_errors=True)
