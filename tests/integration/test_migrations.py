"""Migrations on both backends: in order, once each, safe twice and from two processes."""

from __future__ import annotations

import multiprocessing

from adapters.database import Database
from adapters.migrations import applied, available, migrate


def _migrate_in_child(url: str, out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    try:
        out.put(migrate(Database.from_url(url)))
    except Exception as exc:  # reported to the parent, which asserts on it
        out.put(repr(exc))


def test_migrate_applies_each_file_once(database_url: str) -> None:
    database = Database.from_url(database_url)
    shipped = available(database.kind)
    assert shipped, "the package ships its migrations"
    first = migrate(database)
    assert first == [f"{m.version:04d}_{m.name}" for m in shipped]
    assert migrate(database) == []
    assert applied(database) == [m.version for m in shipped]
    conn = database.connect()
    try:
        conn.execute("SELECT leaf_index, leaf_hash, chain_hash FROM ledger_entries")
    finally:
        conn.close()


def test_two_processes_migrating_at_once_apply_once(database_url: str) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_migrate_in_child, args=(database_url, out)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(60)
    assert all(isinstance(r, list) for r in results), results
    shipped = available(Database.from_url(database_url).kind)
    assert sorted(len(r) for r in results) == [0, len(shipped)]
    assert applied(Database.from_url(database_url)) == [m.version for m in shipped]
