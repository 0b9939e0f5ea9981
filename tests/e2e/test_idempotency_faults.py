"""Idempotency-Key after faults (issue 10, findings 4 and 6), over a real socket: a stream
whose client left is completed as what was recorded, so a retry gets that answer at once
(it used to wait 300 s for a record that stayed pending for a day, then get 409); and a key is
scoped to its agent and surface, so a chat retry never gets an Anthropic-shaped replay."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from adapters.database import Database
from adapters.store import EventStore
from app.services import tenancy
from domain.ids import parse_inference_id
from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.harness.gateway import Server, World, prepare_world, serve

BODY = {"model": "fake-claude", "max_tokens": 64,
        "messages": [{"role": "user", "content": "tell me a long story"}]}
# Far below the 300 s a retry used to wait before its 409.
ANSWERED_WITHIN_S = 20.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeUpstream]:
    with start_fake_upstream() as upstream:
        upstream.script("up-claude", text(" ".join(["word"] * 40), chunk_delay=0.1))
        upstream.script("up-gpt", text("short answer"))
        yield upstream


@pytest.fixture(scope="module")
def gateway(fake: FakeUpstream, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[Server, World, str]]:
    # One gateway for the module: every test uses keys of its own.
    tmp_path: Path = tmp_path_factory.mktemp("idempotency")
    url = f"sqlite:///{tmp_path}/idem.db"
    world = prepare_world(url)
    with serve(url, fake, tmp_path) as server:
        yield server, world, url


def test_a_stream_the_client_left_is_replayed_as_recorded(
        gateway: tuple[Server, World, str], fake: FakeUpstream) -> None:
    server, world, url = gateway
    upstream_calls = len([r for r in fake.requests if r.path == "/v1/messages"])
    headers = {"x-api-key": world.key, "idempotency-key": "leave-early"}
    with httpx.stream("POST", f"{server.url}/v1/messages", json={**BODY, "stream": True},
                      headers=headers, timeout=30) as first:
        assert first.status_code == 200
        public_id = first.headers["x-ainfera-inference-id"]
        lines = first.iter_lines()
        for _ in range(6):
            next(lines)
    # The client has gone; a retry with the same key gets an answer, quickly.
    began = time.monotonic()
    retry = httpx.post(f"{server.url}/v1/messages", json={**BODY, "stream": True},
                       headers=headers, timeout=ANSWERED_WITHIN_S)
    assert retry.status_code == 200, retry.text
    assert time.monotonic() - began < ANSWERED_WITHIN_S
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.headers["x-ainfera-inference-id"] == public_id
    assert "event: message_start" in retry.text
    assert "left before its stream ended" in retry.text
    assert "recorded as cancelled" in retry.text
    again = httpx.post(f"{server.url}/v1/messages", json={**BODY, "stream": True},
                       headers=headers, timeout=ANSWERED_WITHIN_S)
    assert again.text == retry.text  # deterministic
    assert len([r for r in fake.requests if r.path == "/v1/messages"]) == upstream_calls + 1
    store = EventStore(Database.from_url(url))
    try:
        recorded = store.events_of(parse_inference_id(public_id))
        assert [type(e).__name__ for e in recorded][-2:] == ["Completed", "Debited"]
        assert recorded[-2].status == "cancelled"  # type: ignore[attr-defined]
    finally:
        store.close()


def test_a_key_is_scoped_to_its_surface(gateway: tuple[Server, World, str],
                                        fake: FakeUpstream) -> None:
    server, world, _ = gateway
    body = {"model": "fake-gpt", "max_tokens": 16,
            "messages": [{"role": "user", "content": "same body on both surfaces"}]}
    headers = {"x-api-key": world.key, "idempotency-key": "both-surfaces"}
    anthropic = httpx.post(f"{server.url}/v1/messages", json=body, headers=headers, timeout=30)
    chat = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers,
                      timeout=30)
    assert anthropic.status_code == chat.status_code == 200
    assert anthropic.json()["type"] == "message"
    assert chat.json()["object"] == "chat.completion"  # not the Anthropic body replayed
    assert "idempotent-replayed" not in chat.headers
    replayed = httpx.post(f"{server.url}/v1/chat/completions", json=body, headers=headers,
                          timeout=30)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == chat.json()


def test_a_key_is_scoped_to_its_agent(gateway: tuple[Server, World, str]) -> None:
    server, world, url = gateway
    store = EventStore(Database.from_url(url))
    try:
        other_agent = tenancy.create_key(store, "acme", None).key  # acme's default agent
    finally:
        store.close()
    answers = [httpx.post(f"{server.url}/v1/messages", json=BODY, timeout=30,
                          headers={"x-api-key": key, "idempotency-key": "per-agent"})
               for key in (world.key, other_agent)]
    assert [a.status_code for a in answers] == [200, 200]
    assert answers[0].headers["x-ainfera-inference-id"] != \
        answers[1].headers["x-ainfera-inference-id"]
    assert "idempotent-replayed" not in answers[1].headers
