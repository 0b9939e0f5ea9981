"""The projector out of the request process: `ainfera serve` starts it as a supervised child
by default, restarts it when it dies, stops it with itself, and leaves no orphan when the
gateway is killed outright. Consistent reads work across the process boundary, because the
positions they wait for are in the database."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.gateway import Server, prepare_world, serve

BODY = {"model": "fake-claude", "max_tokens": 16,
        "messages": [{"role": "user", "content": "count me"}]}


@pytest.fixture
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        upstream.script("up-claude", text("ok"))
        yield upstream


def children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def wait_for(condition: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def call_and_count(server: Server, key: str) -> int:
    headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
    answer = httpx.post(f"{server.url}/v1/messages", json=BODY, headers=headers, timeout=30)
    assert answer.status_code == 200, answer.text
    usage = httpx.get(f"{server.url}/v1/usage/daily?days=1&consistent=true",
                      headers=headers, timeout=30)
    assert usage.status_code == 200, usage.text
    calls: int = usage.json()["totals"]["calls"]
    return calls


def test_the_default_projector_is_a_supervised_child(fake: FakeUpstream,
                                                    tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/child.db"
    world = prepare_world(url)
    with serve(url, fake, tmp_path) as server:
        wait_for(lambda: children(server.proc.pid), "the projector child")
        [first] = children(server.proc.pid)
        assert call_and_count(server, world.key) == 1

        os.kill(first, signal.SIGKILL)  # the projector dies: the gateway restarts it
        wait_for(lambda: [c for c in children(server.proc.pid) if c != first],
                 "a restarted projector")
        assert call_and_count(server, world.key) == 2
        [second] = children(server.proc.pid)
        assert "projector process exited with -9; restarting" in server.log_path.read_text()
    wait_for(lambda: not alive(second), "the projector to stop with the gateway", 30)


def test_a_gateway_killed_outright_leaves_no_projector_behind(fake: FakeUpstream,
                                                            tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/orphan.db"
    prepare_world(url)
    with serve(url, fake, tmp_path, allow_crash=True) as server:
        wait_for(lambda: children(server.proc.pid), "the projector child")
        [child] = children(server.proc.pid)
        server.proc.kill()
        server.proc.wait(30)
        wait_for(lambda: not alive(child), "the orphaned projector to exit", 30)


def test_in_process_and_off_topologies_start_no_child(fake: FakeUpstream,
                                                     tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/inprocess.db"
    world = prepare_world(url)
    with serve(url, fake, tmp_path, {"AINFERA_PROJECTOR": "inprocess"}) as server:
        assert call_and_count(server, world.key) == 1
        assert children(server.proc.pid) == []
    with serve(url, fake, tmp_path, {"AINFERA_PROJECTOR": "off"}, name="off") as server:
        time.sleep(1)  # a child, if one were started, would be there by now
        assert children(server.proc.pid) == []
