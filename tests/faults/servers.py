"""A redis-server of the fault tier's own, on a free loopback port, that a test may kill and
start at will: never the machine's shared server, which other test runs use at the same time.
(The tier's PostgreSQL cluster is tests/harness/pg_cluster.py's.)
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def redis_binary() -> str | None:
    return shutil.which("redis-server")


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
