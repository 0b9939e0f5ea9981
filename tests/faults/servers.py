"""PostgreSQL and Redis servers of the fault tier's own, on free loopback ports, that a test
may stop, start and kill at will: never the machine's shared servers, which other test runs
use at the same time.

PostgreSQL is a fresh cluster (`initdb`, then `pg_ctl`) in a temporary directory; run as root,
the binaries run as the `postgres` user, which PostgreSQL insists on. Durability settings are
off (`fsync`, `synchronous_commit`): the tier stops the postmaster, it never crashes the
machine, so nothing committed is lost, and a restart takes a fraction of a second.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import redis

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def postgres_bindir() -> Path | None:
    """Where `initdb` and `pg_ctl` are: AINFERA_TEST_PG_BIN, the newest Debian-style
    /usr/lib/postgresql/N/bin, or the PATH."""
    explicit = os.environ.get("AINFERA_TEST_PG_BIN")
    candidates = [Path(explicit)] if explicit else []
    candidates += [Path(p) for p in sorted(glob.glob("/usr/lib/postgresql/*/bin"),
                                           key=lambda p: int(p.split("/")[-2]), reverse=True)]
    found = shutil.which("initdb")
    if found:
        candidates.append(Path(found).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "pg_ctl").exists():
            return candidate
    return None


def redis_binary() -> str | None:
    return shutil.which("redis-server")


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int = field(default_factory=free_port)

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _as_owner(self, *argv: str) -> list[str]:
        # PostgreSQL refuses to run as root.
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def init(self) -> None:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.root, owner.pw_uid, owner.pw_gid)
        subprocess.run(self._as_owner(str(self.bindir / "initdb"), "-D", str(self.data), "-U",
                                      "postgres", "-A", "trust", "--no-sync", "-E", "UTF8"),
                       check=True, capture_output=True, timeout=START_TIMEOUT_S)

    def start(self) -> float:
        """Starts the server and waits until it accepts connections; returns how long it
        took."""
        began = time.monotonic()
        options = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   "-c max_connections=200")
        subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o",
                                      options, "-l", str(self.root / "server.log"), "-w", "-t",
                                      str(START_TIMEOUT_S), "start"),
                       check=True, capture_output=True, timeout=START_TIMEOUT_S + 10)
        return time.monotonic() - began

    def stop(self, mode: str = "fast") -> None:
        """`fast` disconnects every client and shuts down cleanly; `immediate` is a crash
        (the server recovers from its WAL on the next start)."""
        subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m",
                                      mode, "-w", "-t", str(START_TIMEOUT_S), "stop"),
                       check=False, capture_output=True, timeout=START_TIMEOUT_S + 10)

    def running(self) -> bool:
        try:
            with psycopg.connect(self.admin_url, connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return f"postgresql://postgres@127.0.0.1:{self.port}/{name}"


@dataclass
class RedisServer:
    binary: str
    root: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> float:
        began = time.monotonic()
        log = (self.root / "redis.log").open("ab")
        # No persistence: a restart loses every key, as a crashed cache without AOF would.
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", str(self.root), "--maxmemory-policy", "noeviction"],
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        client = redis.Redis.from_url(self.url, socket_connect_timeout=2)
        try:
            while True:
                try:
                    client.ping()
                    return time.monotonic() - began
                except redis.RedisError:
                    if self.proc.poll() is not None or time.monotonic() > deadline:
                        raise RuntimeError(f"redis-server did not start on {self.port}") \
                            from None
                    time.sleep(0.05)
        finally:
            client.close()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)  # a crash: no chance to save anything
            self.proc.wait(30)
        self.proc = None


def scratch_root(prefix: str) -> Path:
    # /tmp rather than pytest's tmp_path: the postgres user must be able to enter it.
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
