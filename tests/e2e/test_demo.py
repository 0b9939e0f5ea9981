"""`make demo`'s script, run as the Makefile runs it (non-interactively): with no vendor key
and nothing but the loopback, it serves real SDK calls through the simulator, verifies a
receipt and the whole ledger, and leaves a file another shell can source."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.harness.gateway import free_port

AINFERA = str(Path(sys.executable).with_name("ainfera"))
VENDOR_KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "GEMINI_API_KEY")


def test_the_demo_runs_end_to_end_without_vendor_keys(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items()
           if k not in VENDOR_KEYS and not k.startswith("AINFERA_")}
    port = free_port()
    proc = subprocess.run(
        [AINFERA, "demo", "--no-wait", "--port", str(port), "--sim-port", "0",
         "--dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    out = proc.stdout
    assert proc.returncode == 0, out + proc.stderr
    assert "Traceback" not in out + proc.stderr
    for step in range(1, 9):
        assert f"[{step}/8]" in out
    assert "anthropic, routed: model='ainfera-inference' -> served by sim-" in out
    assert "anthropic, pinned + streamed: model='sim-claude'" in out
    assert "the model called get_weather(" in out
    assert "openai, pinned + streamed: model='sim-gpt'" in out
    assert "HTTP 429, x-should-retry false" in out
    assert "receipt verifies: 4 events" in out
    assert "no differences:" in out
    assert "Keep exploring" in out
    gateway_log = (tmp_path / "demo" / "gateway.log").read_text()
    assert "Traceback" not in gateway_log
    assert "providers: 3 with a key" in gateway_log
    sourced = (tmp_path / "demo" / "env").read_text()
    assert f"export AINFERA_URL='http://127.0.0.1:{port}'" in sourced
    assert "export KEY='ak_" in sourced
    # A second run starts again from a fresh ledger (the tenant is created anew).
    again = subprocess.run(
        [AINFERA, "demo", "--no-wait", "--port", str(port), "--sim-port", "0",
         "--dir", str(tmp_path / "demo")],
        env=env, capture_output=True, text=True, timeout=300, check=False, cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_demo_refuses_a_busy_port_in_one_line(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run([AINFERA, "demo", "--no-wait", "--port", str(port), "--dir",
                               str(tmp_path / "demo")], capture_output=True, text=True,
                              timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1].startswith(
        f"ainfera: error: port {port} is in use")


def test_the_demo_keeps_serving_until_ctrl_c(tmp_path: Path) -> None:
    import signal
    import time

    import httpx

    env = {k: v for k, v in os.environ.items()
           if k not in VENDOR_KEYS and not k.startswith("AINFERA_")}
    port = free_port()
    out = tmp_path / "demo.out"
    with out.open("w") as sink:
        # A session of its own, like a terminal's foreground job: Ctrl-C reaches the group.
        proc = subprocess.Popen([AINFERA, "demo", "--port", str(port), "--sim-port", "0",
                                 "--dir", str(tmp_path / "demo")], env=env, cwd=tmp_path,
                                stdout=sink, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            deadline = time.monotonic() + 300
            while "Press Ctrl-C" not in out.read_text():
                assert proc.poll() is None, out.read_text()
                assert time.monotonic() < deadline, out.read_text()
                time.sleep(0.5)
            time.sleep(1)
            assert proc.poll() is None  # still serving after the tour
            ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
            assert ready.status_code == 200
            os.killpg(proc.pid, signal.SIGINT)
            assert proc.wait(60) == 0, out.read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
    text = out.read_text()
    assert "Traceback" not in text
    assert "stopping the gateway and the simulator" in text or "the gateway stopped" in text
    with pytest.raises(httpx.TransportError):  # the gateway is gone with the demo
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
