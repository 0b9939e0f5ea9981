"""`ainfera serve` holds its connections to limits (issue 10, finding 8): a client that never
finishes its request headers is dropped after the header timeout (300 slow-header connections
used to be held for as long as their clients liked), too many header bytes get a 431, and
connections beyond the cap are refused at once while the gateway keeps serving."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest

from tests.fakes.upstream import FakeUpstream, start_fake_upstream
from tests.harness.gateway import Server, World, prepare_world, serve

HEADER_TIMEOUT_S = 2
MAX_CONNECTIONS = 40
# Generous for a loaded machine; without the limit these connections stay open indefinitely.
DROPPED_WITHIN_S = 15.0


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, World]]:
    # One gateway for the module: each test leaves no connection of its own behind.
    tmp_path: Path = tmp_path_factory.mktemp("limits")
    url = f"sqlite:///{tmp_path}/limits.db"
    world = prepare_world(url)
    env = {"AINFERA_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
           "AINFERA_MAX_CONNECTIONS": str(MAX_CONNECTIONS)}
    fake: FakeUpstream
    with start_fake_upstream() as fake, serve(url, fake, tmp_path, env) as server:
        yield server, world


def connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=DROPPED_WITHIN_S)
    return sock


def closed_by_server(sock: socket.socket) -> bool:
    """Reads until the server closes the connection (True) or the timeout (False)."""
    try:
        while sock.recv(4096):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
    return True


def test_slow_headers_are_dropped_while_others_are_served(gateway: tuple[Server, World]) -> None:
    server, world = gateway
    with ExitStack() as stack:
        slow = []
        for _ in range(20):
            sock = stack.enter_context(connect(server))
            sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: x\r\n")  # and never the rest
            slow.append(sock)
        idle = stack.enter_context(connect(server))  # sends nothing at all
        began = time.monotonic()
        ok = httpx.get(f"{server.url}/healthz", timeout=10)
        assert ok.status_code == 200
        for sock in [*slow, idle]:
            assert closed_by_server(sock), "a connection without complete headers was kept"
        assert time.monotonic() - began < DROPPED_WITHIN_S
        assert time.monotonic() - began >= HEADER_TIMEOUT_S - 0.5  # not before its time
    del world


def test_too_many_header_bytes_get_431(gateway: tuple[Server, World]) -> None:
    server, _ = gateway
    with connect(server) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")
        sock.sendall(b"x-filler: " + b"a" * 100_000 + b"\r\n")
        reply = b""
        while chunk := sock.recv(4096):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 431")


def test_connections_beyond_the_cap_are_refused(gateway: tuple[Server, World]) -> None:
    server, world = gateway
    with ExitStack() as stack:
        held = [stack.enter_context(connect(server)) for _ in range(MAX_CONNECTIONS)]
        # Each held connection completes one request, so the header timeout leaves it alone
        # (an idle keep-alive connection is the keep-alive timeout's, 5 s by default).
        for sock in held:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n")
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        extra = stack.enter_context(connect(server))
        extra.settimeout(5)
        assert closed_by_server(extra), "a connection beyond the cap was accepted"
        for sock in held:
            sock.close()
    # Back under the cap: served again.
    deadline = time.monotonic() + DROPPED_WITHIN_S
    while True:
        try:
            response = httpx.post(f"{server.url}/v1/messages", timeout=10,
                                  headers={"x-api-key": world.key},
                                  json={"model": "fake-claude", "max_tokens": 8,
                                        "messages": [{"role": "user", "content": "hi"}]})
            assert response.status_code == 200
            break
        except httpx.TransportError:
            assert time.monotonic() < deadline
            time.sleep(0.2)
