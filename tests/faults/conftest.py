"""The fault tier: our own PostgreSQL cluster and redis-server, started once per session.

It skips with a clear message only when the PostgreSQL binaries or redis-server are missing,
and fails instead under AINFERA_TEST_REQUIRE_SERVICES=1 (CI), so CI can never pass by not
running it.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from tests.conftest import REQUIRE_SERVICES
from tests.fakes.upstream import FakeUpstream, start_fake_upstream, text
from tests.faults.servers import RedisServer, redis_binary, scratch_root
from tests.harness.pg_cluster import PgCluster, private_postgres


def _missing(what: str) -> None:
    message = f"fault tier not run: {what} (install redis-server)"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message}; AINFERA_TEST_REQUIRE_SERVICES=1 requires it")
    pytest.skip(message)


@pytest.fixture(scope="session")
def fault_postgres() -> Iterator[PgCluster]:
    """One PostgreSQL cluster of the tier's own for the session (tests/harness/pg_cluster.py:
    it skips, or fails under AINFERA_TEST_REQUIRE_SERVICES=1, without the binaries)."""
    with private_postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def fault_redis() -> Iterator[RedisServer]:
    binary = redis_binary()
    if binary is None:
        _missing("redis-server was not found")
    assert binary is not None
    root = scratch_root("ainfera-faults-redis-")
    server = RedisServer(binary, root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def fault_database(fault_postgres: PgCluster) -> Iterator[str]:
    """A fresh database on the tier's cluster, for one test (its server may be stopped and
    started by that test; it is running again when the test ends)."""
    name = f"f_{uuid.uuid4().hex[:12]}"
    if not fault_postgres.reachable():
        fault_postgres.start()
    with psycopg.connect(fault_postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield fault_postgres.url.rsplit("/", 1)[0] + f"/{name}"
    if not fault_postgres.reachable():
        fault_postgres.start()


@pytest.fixture
def steady_fake() -> Iterator[FakeUpstream]:
    """An upstream that answers every model, streams in a few dozen milliseconds."""
    with start_fake_upstream() as upstream:
        for model in ("up-claude", "up-gpt", "up-gemini"):
            upstream.script(model, text("one two three four five six", chunk_delay=0.02))
        yield upstream
