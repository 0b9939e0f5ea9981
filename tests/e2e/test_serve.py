"""`ainfera serve` as an operator runs it: a real process on a real socket."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

AINFERA = str(Path(sys.executable).with_name("ainfera"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_serve_answers_health_and_readiness(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AINFERA_DATABASE_URL": f"sqlite:///{tmp_path}/a.db",
           "AINFERA_SIGNING_KEY_FILE": str(tmp_path / "signing.key")}
    proc = subprocess.Popen(
        [AINFERA, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    output = proc.stdout.read() if proc.stdout else ""
                    raise AssertionError(f"server did not start:\n{output}") from None
                time.sleep(0.1)
        assert health.status_code == 200
        ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200
        assert ready.json()["status"] == "ready"
    finally:
        proc.terminate()
        output, _ = proc.communicate(timeout=30)
    # uvicorn re-raises SIGTERM after its graceful shutdown; what matters is that it finished.
    assert proc.returncode in (0, -signal.SIGTERM), output
    assert "Application shutdown complete" in output
    assert "Traceback" not in output
