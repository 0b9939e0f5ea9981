"""A PostgreSQL server of a test's own, for fault tests that stop and start it: `initdb` in a
fresh directory, `pg_ctl` on a free loopback port. The machine's shared server is never touched.

The binaries come from `pg_config --bindir` or /usr/lib/postgresql/*/bin. PostgreSQL refuses to
run as root, so when the tests run as root the server runs as the `postgres` user (runuser).
Durability is switched off (fsync, synchronous_commit): these tests are about connections, not
crash safety of the disk.
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from tests.conftest import REQUIRE_SERVICES


def _bindir() -> Path | None:
    found = shutil.which("pg_config")
    if found:
        out = subprocess.run([found, "--bindir"], capture_output=True, text=True, check=False)
        if out.returncode == 0 and (Path(out.stdout.strip()) / "initdb").exists():
            return Path(out.stdout.strip())
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PgCluster:
    bindir: Path
    data: Path
    socket_dir: Path
    port: int
    as_user: list[str]

    @property
    def url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _ctl(self, *args: str) -> None:
        subprocess.run([*self.as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data),
                        "-l", str(self.data.parent / "server.log"), *args],
                       check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.socket_dir} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._ctl("-o", options, "-w", "-t", "60", "start")

    def stop(self) -> None:
        """A fast shutdown: every session is terminated (AdminShutdown), as in a restart."""
        self._ctl("-m", "fast", "-w", "-t", "60", "stop")

    def kill(self) -> None:
        """An immediate shutdown, for cleaning up whatever state the test left it in."""
        with contextlib.suppress(subprocess.SubprocessError):
            self._ctl("-m", "immediate", "-w", "-t", "60", "stop")

    def reachable(self) -> bool:
        try:
            with psycopg.connect(self.url, connect_timeout=2) as conn:
                conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True


@contextlib.contextmanager
def private_postgres() -> Iterator[PgCluster]:
    bindir = _bindir()
    if bindir is None:
        if REQUIRE_SERVICES:
            pytest.fail("PostgreSQL binaries (initdb, pg_ctl) are required for the fault tests")
        pytest.skip("PostgreSQL binaries (initdb, pg_ctl) are not installed")
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    base = Path(tempfile.mkdtemp(prefix="ainfera-pg-"))
    try:
        if as_user:
            shutil.chown(base, "postgres")
        cluster = PgCluster(bindir, base / "data", base, _free_port(), as_user)
        subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(cluster.data), "-A", "trust",
                        "-U", "postgres", "--no-sync"], check=True, capture_output=True,
                       timeout=120)
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.kill()
    finally:
        shutil.rmtree(base, ignore_errors=True)
