"""Shared fixtures: real PostgreSQL and Redis when configured, SQLite always.

The PostgreSQL and Redis tiers run when AINFERA_TEST_POSTGRES_URL / AINFERA_TEST_REDIS_URL are
set; with AINFERA_TEST_REQUIRE_SERVICES=1 a missing or unreachable server fails the run instead
of skipping it, so CI can never pass by skipping the tiers that matter.

Tests never write into the checkout: keys, databases and logs go to temporary paths. The run
fails when a file of the checkout appeared or changed while it ran (`var/signing.key` written
by a test would otherwise be picked up by a later `make serve`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

POSTGRES_URL = os.environ.get("AINFERA_TEST_POSTGRES_URL", "")
REDIS_URL = os.environ.get("AINFERA_TEST_REDIS_URL", "")
REQUIRE_SERVICES = os.environ.get("AINFERA_TEST_REQUIRE_SERVICES") == "1"


CHECKOUT = Path(__file__).resolve().parents[1]
# What tools (not tests) write in a checkout: the venvs (LiteLLM's for `make bench-compare`
# too), caches, build metadata.
_TOOL_DIRS = frozenset({".git", ".venv", ".litellm-venv", ".pytest_cache", ".mypy_cache",
                        ".ruff_cache", ".import_linter_cache", ".hypothesis", "__pycache__",
                        "build", "dist"})
_SNAPSHOT = pytest.StashKey[dict[str, tuple[int, int]]]()


def checkout_files(root: Path = CHECKOUT) -> dict[str, tuple[int, int]]:
    """Every file of the checkout but the tools' own, with its mtime and size."""
    files: dict[str, tuple[int, int]] = {}
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in _TOOL_DIRS and not d.endswith(".egg-info")]
        for name in names:
            path = Path(folder, name)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            files[str(path.relative_to(root))] = (stat.st_mtime_ns, stat.st_size)
    return files


def checkout_changes(before: dict[str, tuple[int, int]],
                     after: dict[str, tuple[int, int]]) -> list[str]:
    return sorted([f"new: {name}" for name in after.keys() - before.keys()]
                  + [f"changed: {name}" for name in after.keys() & before.keys()
                     if after[name] != before[name]])


def pytest_sessionstart(session: pytest.Session) -> None:
    session.stash[_SNAPSHOT] = checkout_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    before = session.stash.get(_SNAPSHOT, None)
    if before is None:
        return
    changes = checkout_changes(before, checkout_files())
    if changes:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = ("\ntests wrote into the checkout (use tmp_path for keys, databases and logs):\n  "
                + "\n  ".join(changes))
        if reporter is not None:
            reporter.write_line(text, red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def _unavailable(what: str, why: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{what} is required (AINFERA_TEST_REQUIRE_SERVICES=1) but {why}")
    pytest.skip(f"{what} tier not run: {why}")


def _check_postgres() -> None:
    if not POSTGRES_URL:
        _unavailable("PostgreSQL", "AINFERA_TEST_POSTGRES_URL is not set")
    import psycopg

    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        _unavailable("PostgreSQL", f"{POSTGRES_URL} is not reachable: {exc}")


def _check_redis() -> None:
    if not REDIS_URL:
        _unavailable("Redis", "AINFERA_TEST_REDIS_URL is not set")
    import redis

    try:
        client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        _unavailable("Redis", f"{REDIS_URL} is not reachable: {exc}")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A PostgreSQL URL whose `schema` query parameter names a fresh schema, dropped after.

    A schema per test keeps two runs on the same database from colliding.
    """
    _check_postgres()
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    sep = "&" if "?" in POSTGRES_URL else "?"
    try:
        yield f"{POSTGRES_URL}{sep}schema={schema}"
    finally:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def redis_url() -> str:
    """The Redis URL; tests isolate themselves with a unique key prefix (see `redis_prefix`)."""
    _check_redis()
    return REDIS_URL


@pytest.fixture
def redis_prefix() -> str:
    return f"ainfera-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: object) -> str:
    """One test body, two stores: the embedded SQLite default and real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/ainfera.db"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def admin_store(database_url: str) -> Iterator[Any]:
    """The event store of `database_url`, migrated, as the admin CLI opens it."""
    from adapters.database import Database
    from adapters.migrations import migrate
    from adapters.store import EventStore

    database = Database.from_url(database_url)
    migrate(database)
    store = EventStore(database)
    yield store
    store.close()
