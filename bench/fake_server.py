"""The loopback fake upstream (tests/fakes/upstream.py) in a process of its own, so a load
generator, a gateway and the upstream never share one GIL.

Run: .venv/bin/python -m bench.fake_server

It prints `base_url <url>` once listening, then obeys one command per line on stdin:
    script MODEL FIRST_BYTE_DELAY CHUNK_DELAY WORDS   -> re-scripts MODEL, answers `ok`
    served                                            -> answers `served N` (responses finished)
    quit (or end of input)                            -> shuts down
Every upstream model of the bench catalog (up-claude, up-gpt, up-gemini, up-weak) starts
scripted with an immediate 5-word text reply. The fake's request log is cleared every second,
so a long run does not grow its memory.
"""

from __future__ import annotations

import asyncio
import sys
import threading

import uvloop

from tests.fakes.upstream import FakeUpstream, text

MODELS = ("up-claude", "up-gpt", "up-gemini", "up-weak")
DEFAULT_WORDS = 5


def words(count: int) -> str:
    return " ".join(f"word{i}" for i in range(count))


def _forget_requests(fake: FakeUpstream, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        fake.requests.clear()


def _answer(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def main() -> None:
    # The fake builds its own loop with asyncio.new_event_loop(): make that a uvloop one, as
    # the gateway's is, so the direct baseline is as fast as this fake can be.
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    fake = FakeUpstream()
    for model in MODELS:
        fake.script(model, text(words(DEFAULT_WORDS)))
    stop = threading.Event()
    janitor = threading.Thread(target=_forget_requests, args=(fake, stop), daemon=True)
    janitor.start()
    _answer(f"base_url {fake.base_url}")
    try:
        for raw in sys.stdin:
            parts = raw.split()
            if not parts:
                continue
            if parts[0] == "quit":
                break
            if parts[0] == "served":
                _answer(f"served {fake.finished}")
            elif parts[0] == "script" and len(parts) == 5:
                model, first, chunk, count = parts[1], float(parts[2]), float(parts[3]), parts[4]
                fake.script(model, text(words(int(count)), first_byte_delay=first,
                                        chunk_delay=chunk))
                _answer("ok")
            else:
                _answer(f"error unknown command {raw.strip()!r}")
    finally:
        stop.set()
        fake.close()


if __name__ == "__main__":
    main()
