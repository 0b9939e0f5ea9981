"""Migrations on both backends: in order, once each, safe twice and from two processes;
0006's conversion of read-model money to exact nano-dollars; 0008's new columns."""

from __future__ import annotations

import multiprocessing

import pytest

from adapters.database import Database
from adapters.migrations import MigrationError, applied, available, migrate


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


def _execute(database: Database, statement: str, *params: object) -> list[tuple[object, ...]]:
    conn = database.connect()
    try:
        cursor = conn.execute(database.sql(statement), params)
        return [tuple(r) for r in cursor.fetchall()] if cursor.description else []
    finally:
        conn.close()


def _old_rows(database: Database, cost: str, cap: str) -> None:
    """Read-model rows as 0002 stored them: money as decimal TEXT."""
    _execute(database, "INSERT INTO routing_outcomes (inference_id, tenant_id, agent_id, api, "
             "requested_model, ruleset_hash, created_at, cost_usd) VALUES "
             "(%s, 't', 'a', 'messages', 'm', 'h', 'x', %s)", f"ro-{cost}", cost)
    _execute(database, "INSERT INTO agent_metrics (inference_id, tenant_id, agent_id, router, "
             "created_at, cost_usd) VALUES (%s, 't', 'a', 'r', 'x', %s)", f"am-{cost}", cost)
    _execute(database, "INSERT INTO usage_daily (tenant_id, agent_id, day, calls, cost_usd, ok, "
             "fallback, error) VALUES ('t', %s, '2026-11-29', 1, %s, 1, 0, 0)", f"a-{cost}",
             cost)
    _execute(database, "INSERT INTO agents (agent_id, tenant_id, name, daily_cap_usd, "
             "registered_at, policy_updated_at) VALUES (%s, 't', 'n', %s, 'x', 'x')",
             f"ag-{cap}", cap)


def test_0006_converts_existing_money_rows_to_exact_nano_dollars(database_url: str) -> None:
    database = Database.from_url(database_url)
    migrate(database, up_to=5)
    # Spend rounds up below a nano-dollar and caps round down, as the projector does now.
    cases = [("0.001200", "7.50", 1_200_000, 7_500_000_000),
             ("12", "0", 12_000_000_000, 0),
             ("0", "12.345678912", 0, 12_345_678_912),
             ("0.0000000001", "0.0000000019", 1, 1),
             ("3.123456789000", "100", 3_123_456_789, 100_000_000_000)]
    for cost, cap, _, _ in cases:
        _old_rows(database, cost, cap)
    _execute(database, "INSERT INTO routing_outcomes (inference_id, tenant_id, agent_id, api, "
             "requested_model, ruleset_hash, created_at) VALUES "
             "('unpriced', 't', 'a', 'messages', 'm', 'h', 'x')")
    assert migrate(database) == [f"{m.version:04d}_{m.name}" for m in available(database.kind)
                                 if m.version > 5]
    for table, key, prefix in (("routing_outcomes", "inference_id", "ro-"),
                               ("agent_metrics", "inference_id", "am-"),
                               ("usage_daily", "agent_id", "a-")):
        got = dict(_execute(database, f"SELECT {key}, cost_nano_usd FROM {table}"))
        for cost, _, nanos, _ in cases:
            assert got.pop(f"{prefix}{cost}") == nanos, (table, cost)
        assert got == ({"unpriced": None} if table == "routing_outcomes" else {})
    caps = dict(_execute(database, "SELECT agent_id, daily_cap_nano_usd FROM agents"))
    assert caps == {f"ag-{cap}": nanos for _, cap, _, nanos in cases}
    # The point of it: the database adds money exactly.
    (total,) = _execute(database, "SELECT SUM(cost_nano_usd) FROM usage_daily")[0]
    assert int(str(total)) == sum(nanos for _, _, nanos, _ in cases)


def test_0006_refuses_money_that_is_not_a_decimal_and_changes_nothing(
        database_url: str) -> None:
    database = Database.from_url(database_url)
    migrate(database, up_to=5)
    _old_rows(database, "0.5", "1")
    _execute(database, "UPDATE usage_daily SET cost_usd = 'five dollars'")
    with pytest.raises(MigrationError):
        migrate(database)
    assert applied(database) == [1, 2, 3, 4, 5]
    assert _execute(database, "SELECT cost_usd FROM usage_daily") == [("five dollars",)]


def test_0008_adds_served_model_and_requested_preference_null_to_existing_rows(
        database_url: str) -> None:
    """Rows projected before the events carried these fields get NULL, which is what a
    replay of those events writes (tests/integration/test_contract_served_model.py), so
    `ainfera verify` agrees with a migrated store."""
    database = Database.from_url(database_url)
    migrate(database, up_to=7)
    _execute(database, "INSERT INTO routing_outcomes (inference_id, tenant_id, agent_id, api, "
             "requested_model, chosen_model, ruleset_hash, created_at) VALUES "
             "('old', 't', 'a', 'messages', 'ainfera-inference', 'm', 'h', 'x')")
    _execute(database, "INSERT INTO decisions (inference_id, tenant_id, agent_id, api, router, "
             "requested_model, chosen_model, policy, ruleset_hash, candidates, "
             "dashboard_candidates, created_at) VALUES ('old', 't', 'a', 'messages', 'direct', "
             "'m', 'm', '{}', 'h', '[]', '[]', 'x')")
    assert migrate(database) == ["0008_served_model"]
    for table in ("routing_outcomes", "decisions"):
        assert _execute(database, f"SELECT inference_id, chosen_model, served_model, "
                                  f"requested_preference FROM {table}") == [
            ("old", "m", None, None)]
