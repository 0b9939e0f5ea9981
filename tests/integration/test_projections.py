"""The read models and the one projector on both backends: exactly the expected rows for a mixed
run; the same tables wherever batches end (several events of one inference in one batch, or an
inference split across batches); set-based writes; money in whole nano-dollars that SQL sums
exactly; and the same tables however often a projector is stopped, crashed, doubled (threads
and processes) or one of its models rebuilt while the others are ahead."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import pytest

from adapters.budget import usd_to_nano
from adapters.database import Database
from adapters.store import EventStore
from app.services import tenancy
from app.services.dashboard import usage_daily as usage_report
from domain.routing import ROUTER
from projections.agent_metrics import AgentMetrics
from projections.events import Completed
from projections.fold import Sequenced
from projections.projector import Projector
from projections.registry import PROJECTIONS, build_projector, names
from projections.view import Session, utc_text
from tests.mixed_run import CANDIDATES, Run, dump_all, finish, record, route


def projector(database: Database, store: EventStore, **options: Any) -> Projector:
    return build_projector(database.connect, database.kind, store, **options)


def catch_up_all(database: Database, store: EventStore, **options: Any) -> int:
    every = projector(database, store, **options)
    try:
        return every.catch_up()
    finally:
        every.close()


def rebuilt_dump(database: Database, store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    """The tables as an uninterrupted run from zero makes them, in one batch."""
    every = projector(database, store, batch_size=100_000)
    try:
        for name in names():
            every.reset(name)
        every.catch_up()
    finally:
        every.close()
    return dump_all(database)


def when(store: EventStore, run: Run, name: str, index: int) -> str:
    event: Any = store.events_of(run.ids[name])[index]
    return utc_text(event.timestamp)


def query(database: Database, statement: str, *params: Any) -> list[tuple[Any, ...]]:
    conn = database.connect()
    try:
        return Session(conn, database.kind).execute(statement, params)
    finally:
        conn.close()


def test_a_mixed_run_projects_exactly_the_expected_rows(
        database: Database, store: EventStore, run: Run) -> None:
    catch_up_all(database, store)
    tables = dump_all(database)
    a, b, bot, default = (str(run.tenant_a), str(run.tenant_b), str(run.bot_a),
                          str(run.agent_a))
    ruleset = "sha256:" + "ab" * 32

    def outcome(name: str, api: str, requested: str, alias: str | None, chosen: str | None,
                status: str, latency: int, cost: int | None, tenant: str = a,
                agent: str = bot) -> tuple[Any, ...]:
        # The mixed run records no served_model or requested_preference (the last two
        # columns), as calls from before those fields existed did not: NULL.
        return (str(run.ids[name]), tenant, agent, api, requested, alias, chosen, "0.70",
                "balanced", ruleset, status, latency, when(store, run, name, 0),
                when(store, run, name, -1 if cost is None else -2), cost, None, None)

    # Money is whole nano-dollars: 0.001200 USD is 1,200,000.
    assert tables["routing_outcomes"] == sorted([
        outcome("routed", "messages", ROUTER, None, "gpt-5-mini", "succeeded", 120, 1_200_000),
        outcome("fallback", "chat.completions", "ainfera-auto", "ainfera-auto", "gpt-5-mini",
                "fallback_succeeded", 300, 800_000),
        outcome("rejected", "messages", ROUTER, None, None, "rejected_floor", 2, None),
        outcome("failed", "messages", ROUTER, None, "gpt-5-mini", "failed", 50, 0),
        outcome("cancelled", "messages", ROUTER, None, "gpt-5-mini", "cancelled", 900,
                300_000),
        outcome("other_tenant", "messages", ROUTER, None, "gpt-5-mini", "succeeded", 70,
                500_000, tenant=b, agent=_default_of(store, run)),
    ])
    assert str(run.ids["direct"]) not in {row[0] for row in tables["routing_outcomes"]}

    day = when(store, run, "routed", 0)[:10]
    # (tenant, agent, day, calls, ok, fallback, error, cost_nano_usd)
    assert tables["usage_daily"] == sorted([
        (a, bot, day, 5, 2, 1, 3, 2_300_000),
        (a, default, day, 1, 1, 0, 0, 100_000),
        (b, _default_of(store, run), day, 1, 1, 0, 0, 500_000),
    ])
    assert len(tables["usage_daily_inferences"]) == 7

    metrics = {row[0]: (*row[3:6], row[8]) for row in tables["agent_metrics"]}
    assert metrics == {
        str(run.ids["routed"]): (ROUTER, "succeeded", 120, 1_200_000),
        str(run.ids["fallback"]): (ROUTER, "fallback_succeeded", 300, 800_000),
        str(run.ids["rejected"]): (ROUTER, "rejected_floor", 2, None),
        str(run.ids["failed"]): (ROUTER, "failed", 50, 0),
        str(run.ids["cancelled"]): (ROUTER, "cancelled", 900, 300_000),
        str(run.ids["direct"]): ("direct", "succeeded", 80, 100_000),
        str(run.ids["other_tenant"]): (ROUTER, "succeeded", 70, 500_000),
    }

    decisions = {row[0]: row for row in tables["decisions"]}
    assert len(decisions) == 7
    routed = decisions[str(run.ids["routed"])]
    assert routed[4:8] == (ROUTER, ROUTER, None, "gpt-5-mini")
    # Byte-reproducible: canonical JSON of the candidates exactly as Routed recorded them.
    assert routed[10] == json.dumps(CANDIDATES, sort_keys=True, separators=(",", ":"))
    assert [(c["model"], c["chosen"], c["excluded"]) for c in json.loads(routed[11])] == [
        ("gemini-2.5-flash", False, "below_floor"),
        ("gpt-5-mini", True, None),
        ("claude-haiku-4-5", False, "tools_unsupported"),
        ("gpt-5", False, "ineligible"),
        ("claude-sonnet-4-5", False, "below_floor"),
    ]
    direct = decisions[str(run.ids["direct"])]
    assert direct[4:8] == ("direct", "claude-haiku-4-5", None, "claude-haiku-4-5")
    assert (direct[10], direct[11]) == ("[]", "[]")
    rejected = decisions[str(run.ids["rejected"])]
    assert rejected[7] is None
    assert all(not c["chosen"] for c in json.loads(rejected[11]))

    # (tenant, name, daily_cap_nano_usd): bot registered at 5.00, then capped at 7.50.
    assert sorted((row[1], row[2], row[5]) for row in tables["agents"]) == sorted(
        [(a, "default", None), (a, "bot", 7_500_000_000), (b, "default", None)])

    end = store.max_notification_id()
    assert {row[0]: row[2] for row in tables["projection_tracking"]} == {
        cls.name: end for cls in PROJECTIONS}


def _default_of(store: EventStore, run: Run) -> str:
    routed: Any = store.events_of(run.ids["other_tenant"])[0]
    return str(routed.agent_id)


@pytest.mark.parametrize("batch_size", [1, 2, 3, 5, 8, 13])
def test_the_tables_do_not_depend_on_where_batches_end(
        database: Database, store: EventStore, run: Run, batch_size: int) -> None:
    """Batches of 1 split every inference; of 13, most hold several events of one inference
    and end in the middle of the next: every model folds each way to the same rows."""
    catch_up_all(database, store, batch_size=batch_size)
    assert dump_all(database) == rebuilt_dump(database, store)


def test_usage_daily_adds_up_across_batches(
        database: Database, store: EventStore, run: Run) -> None:
    catch_up_all(database, store)
    tenant, bot = run.tenant_a, run.bot_a
    # Three calls routed (write-ahead) in one batch, completed and debited in a later one,
    # and two more whole calls in a third: every increment lands on the one row of the day.
    calls = [route(None, tenant, bot, f"x{n}", router=ROUTER, requested=ROUTER,
                   chosen="gpt-5-mini", candidates=CANDIDATES) for n in range(3)]
    store.save_events([e for call in calls for e in call.inference.collect_events()])
    catch_up_all(database, store)
    assert bot_row(database, run) == (8, 2, 1, 3, 2_300_000)  # calls, ok, fallback, error, $
    finish(store, calls, cost="0.000000100")
    catch_up_all(database, store)
    assert bot_row(database, run) == (8, 5, 1, 3, 2_300_300)
    for n in range(2):
        record(store, tenant, bot, f"y{n}", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, status="failed", cost="0.5")
    catch_up_all(database, store, batch_size=4)
    assert bot_row(database, run) == (10, 5, 1, 5, 1_002_300_300)
    assert dump_all(database) == rebuilt_dump(database, store)


def bot_row(database: Database, run: Run) -> tuple[Any, ...]:
    (row,) = query(database, "SELECT calls, ok, fallback, error, cost_nano_usd FROM usage_daily "
                             "WHERE agent_id = %s", str(run.bot_a))
    return tuple(int(v) for v in row)


@pytest.mark.parametrize("inferences", [10, 60])
def test_a_batch_writes_a_fixed_number_of_statements_however_many_events(
        database: Database, store: EventStore, run: Run, inferences: int) -> None:
    """Set-based writes: one multi-row insert or upsert per table, one executemany per kind of
    update; the count does not grow with the events (per-event SQL would send 5 per event)."""
    catch_up_all(database, store)
    every = projector(database, store, batch_size=100_000)
    try:
        every.catch_up()  # reads the positions: nothing to apply
        calls = [route(None, run.tenant_a, run.bot_a, f"s{n}", router=ROUTER,
                       requested=ROUTER, chosen="gpt-5-mini", candidates=CANDIDATES)
                 for n in range(inferences)]
        store.save_events([e for call in calls for e in call.inference.collect_events()])
        routed = statements_of_one_batch(every)
        finish(store, calls)  # updates of rows created by the batch before
        completed = statements_of_one_batch(every)
    finally:
        every.close()
    assert routed <= 20, routed
    assert completed <= 20, completed
    assert dump_all(database) == rebuilt_dump(database, store)


def statements_of_one_batch(every: Projector) -> int:
    """What one batch sends to the database: BEGIN to COMMIT, the lock and position writes."""
    before = every.state().statements_total
    assert every.run_once() > 0
    return every.state().statements_total - before


def test_money_is_whole_nano_dollars_that_sql_sums_exactly(
        database: Database, store: EventStore, run: Run) -> None:
    # Amounts a float cannot add exactly, plus one finer than a nano-dollar, which counts
    # rounded up: the spend counters' rule (adapters.budget), so both agree to the nano.
    costs = ["0.1", "0.2", "0.000000001", "0.0000000001", "12.345678912", "0"]
    tenant = tenancy.create_tenant(store, "initech")
    agent = tenancy.create_key(store, "initech", None).agent_id
    ids = [record(store, tenant, agent, f"m{n}", router=ROUTER, requested=ROUTER,
                  chosen="gpt-5-mini", candidates=CANDIDATES, cost=cost)
           for n, cost in enumerate(costs)]
    catch_up_all(database, store)
    expected = sum(usd_to_nano(Decimal(cost)) for cost in costs)
    assert expected == 12_645_678_914
    marks = ", ".join(["%s"] * len(ids))
    for table in ("routing_outcomes", "agent_metrics"):
        (total,) = query(database, f"SELECT SUM(cost_nano_usd) FROM {table} "
                                   f"WHERE inference_id IN ({marks})", *map(str, ids))[0]
        assert int(total) == expected
    (total,) = query(database, "SELECT SUM(cost_nano_usd) FROM usage_daily "
                               "WHERE tenant_id = %s AND agent_id = %s",
                     str(tenant), str(agent))[0]
    assert int(total) == expected
    conn = database.connect()
    try:  # the API renders the sum as a decimal string, exactly
        report = usage_report(Session(conn, database.kind), str(tenant), 1,
                              _routed_day(store, ids[0]))
    finally:
        conn.close()
    assert report["totals"]["cost_usd"] == "12.645678914"


def _routed_day(store: EventStore, inference: Any) -> Any:
    routed: Any = store.events_of(inference)[0]
    return routed.timestamp.date()


@pytest.mark.parametrize("stop_after", [1, 7, 19])
def test_a_projector_stopped_half_way_resumes_to_the_same_tables(
        database: Database, store: EventStore, run: Run, stop_after: int) -> None:
    first = projector(database, store, batch_size=3)
    assert first.catch_up(max_events=stop_after) == stop_after
    first.close()  # the process "dies" here; only committed batches remain
    partial = dump_all(database)
    assert {row[2] for row in partial["projection_tracking"]} == {stop_after}
    catch_up_all(database, store, batch_size=4)
    resumed = dump_all(database)
    assert resumed == rebuilt_dump(database, store)
    assert resumed != partial


class CrashingMetrics(AgentMetrics):
    """Writes its rows, then dies on a batch holding a Completed, as a process killed
    mid-batch would: everything the batch wrote, in every model, must roll back."""

    def apply(self, session: Session, batch: Sequence[Sequenced]) -> None:
        super().apply(session, batch)
        if any(isinstance(item.event, Completed) for item in batch):
            raise RuntimeError("killed mid-batch")


def test_a_batch_that_dies_half_way_leaves_nothing_behind(
        database: Database, store: EventStore, run: Run) -> None:
    models = [cls() for cls in PROJECTIONS if cls is not AgentMetrics] + [CrashingMetrics()]
    crashing = Projector(models, store, database.connect, database.kind, batch_size=1000)
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        crashing.run_once()
    crashing.close()
    assert "killed mid-batch" in (crashing.state().last_error or "")
    after_crash = dump_all(database)
    assert all(rows == [] for table, rows in after_crash.items()
               if table != "projection_tracking"), after_crash
    assert [r for r in after_crash["projection_tracking"] if r[2] != 0] == []
    catch_up_all(database, store)
    assert dump_all(database) == rebuilt_dump(database, store)


def test_projectors_racing_in_threads_never_apply_an_event_twice(
        database: Database, store: EventStore, run: Run) -> None:
    for n in range(3):  # more events, so the projectors overlap for longer
        record(store, run.tenant_a, run.bot_a, f"more{n}", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000001")
    end = store.max_notification_id()
    racers = [projector(database, store, batch_size=2),
              projector(database, store, batch_size=3),
              projector(database, store, only=["usage_daily"], batch_size=2),
              projector(database, store, only=["routing_outcomes", "ledger_entries"],
                        batch_size=5)]
    start = threading.Barrier(len(racers))
    errors: list[BaseException] = []

    def race(racer: Projector) -> None:
        try:
            start.wait()
            racer.catch_up()
        except BaseException as exc:
            errors.append(exc)
        finally:
            racer.close()

    threads = [threading.Thread(target=race, args=(r,)) for r in racers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert errors == []
    # Every model applied every event exactly once, whichever projector got it.
    applied = dict.fromkeys(names(), 0)
    for racer in racers:
        for status in racer_statuses(racer):
            applied[status["projection"]] += status["applied"]
    assert applied == dict.fromkeys(names(), end)
    raced = dump_all(database)
    assert raced == rebuilt_dump(database, store)
    assert bot_row(database, run) == (8, 5, 1, 3, 2_303_000)


def racer_statuses(racer: Projector) -> list[dict[str, Any]]:
    return racer.statuses()


def _race_in_a_process(url: str, batch_size: int, out: Any) -> None:
    database = Database.from_url(url)
    store = EventStore(database)
    try:
        racer = build_projector(database.connect, database.kind, store, batch_size=batch_size)
        out.put(("ready", None))
        racer.catch_up()
        out.put(("done", {s["projection"]: s["applied"] for s in racer.statuses()}))
        racer.close()
    except BaseException as exc:  # reported to the parent, which asserts on it
        out.put(("error", repr(exc)))
    finally:
        store.close()


def test_two_projector_processes_racing_never_double_count(
        database: Database, store: EventStore, run: Run) -> None:
    for n in range(40):
        record(store, run.tenant_a, run.bot_a, f"p{n}", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000001")
    end = store.max_notification_id()
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_race_in_a_process, args=(database.url, size, out))
             for size in (3, 4)]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=120) for _ in range(2 * len(procs))]
    for proc in procs:
        proc.join(60)
    assert [r for r in results if r[0] == "error"] == []
    applied = dict.fromkeys(names(), 0)
    for kind, counts in results:
        if kind == "done":
            for name, count in counts.items():
                applied[name] += count
    assert applied == dict.fromkeys(names(), end)
    assert dump_all(database) == rebuilt_dump(database, store)
    assert bot_row(database, run) == (45, 42, 1, 3, 2_340_000)


def test_a_running_projector_follows_new_events_and_serves_wait_for(
        database: Database, store: EventStore, run: Run) -> None:
    live = projector(database, store, poll_interval=5.0)
    live.start()
    try:
        assert live.wait_for(store.max_notification_id(), timeout=30)
        new = record(store, run.tenant_a, run.bot_a, "late", router=ROUTER, requested=ROUTER,
                     chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.5")
        # The poll is 5 s: answering well within it shows wait_for woke the projector.
        assert live.wait_for(store.max_notification_id(), timeout=4)
        state = live.state()
        assert (state.lag, state.position, state.last_error) == (
            0, store.max_notification_id(), None)
        assert state.running
        assert not live.wait_for(store.max_notification_id() + 1, timeout=0.2)
    finally:
        live.stop()
    costs = {row[0]: row[14] for row in dump_all(database)["routing_outcomes"]}
    assert costs[str(new)] == 500_000_000
    assert costs[str(run.ids["routed"])] == 1_200_000


def test_a_rebuild_while_a_projector_is_running_ends_in_the_same_tables(
        database: Database, store: EventStore, run: Run) -> None:
    background = projector(database, store, batch_size=2, poll_interval=0.01)
    background.start()
    try:
        assert background.wait_for(store.max_notification_id(), timeout=30)
        rebuilder = projector(database, store, only=["usage_daily"], batch_size=2)
        rebuilder.reset("usage_daily")
        record(store, run.tenant_a, run.bot_a, "during", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000001")
        rebuilder.catch_up()
        rebuilder.close()
        assert background.wait_for(store.max_notification_id(), timeout=30)
    finally:
        background.stop()
    assert background.state().last_error is None
    live = dump_all(database)
    assert live == rebuilt_dump(database, store)
    assert bot_row(database, run) == (6, 3, 1, 3, 2_301_000)


def test_a_model_rebuilt_from_zero_catches_up_while_the_others_skip_what_they_have(
        database: Database, store: EventStore, run: Run) -> None:
    """`ainfera rebuild usage_daily` killed right after its reset: the running projector
    reads again from the lowest position, usage_daily applies everything once more and the
    models that are ahead apply only the events they had not seen."""
    first_end = store.max_notification_id()
    # A batch size that does not divide the end: one batch then holds events the models
    # that are ahead have applied and events they have not, which they must tell apart.
    size = next(n for n in (3, 4, 5, 7) if first_end % n)
    live = projector(database, store, batch_size=size, poll_interval=0.01)
    live.start()
    try:
        assert live.wait_for(first_end, timeout=30)
        before = dump_all(database)
        interrupted = projector(database, store, only=["usage_daily"])
        interrupted.reset("usage_daily")
        interrupted.close()
        late = record(store, run.tenant_a, run.bot_a, "late", router=ROUTER, requested=ROUTER,
                      chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000004")
        end = store.max_notification_id()
        assert live.wait_for(end, timeout=30)
    finally:
        live.stop()
    applied = {s["projection"]: s["applied"] for s in live.statuses()}
    assert applied == {name: end + (first_end if name == "usage_daily" else 0)
                       for name in names()}
    after = dump_all(database)
    assert after == rebuilt_dump(database, store)
    assert bot_row(database, run) == (6, 3, 1, 3, 2_304_000)
    # The models that were ahead only gained the late call's rows.
    new_outcomes = set(after["routing_outcomes"]) - set(before["routing_outcomes"])
    assert [row[0] for row in new_outcomes] == [str(late)]


def test_an_idle_projector_notices_a_rebuild_without_new_events(
        database: Database, store: EventStore, run: Run) -> None:
    idle = projector(database, store, poll_interval=0.01)
    idle.start()
    try:
        assert idle.wait_for(store.max_notification_id(), timeout=30)
        interrupted = projector(database, store, only=["routing_outcomes"])
        interrupted.reset("routing_outcomes")  # a rebuild killed right after its reset
        interrupted.close()
        deadline = time.monotonic() + 30
        while len(dump_all(database)["routing_outcomes"]) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        idle.stop()
    live = dump_all(database)["routing_outcomes"]
    assert live == rebuilt_dump(database, store)["routing_outcomes"]


class CountingSource:
    """The event store, counting decodes."""

    def __init__(self, store: EventStore) -> None:
        self.store = store
        self.decoded: list[int] = []

    def notifications(self, start: int, limit: int) -> Any:
        return self.store.notifications(start, limit)

    def decode(self, notification: Any) -> Any:
        self.decoded.append(notification.id)
        return self.store.decode(notification)

    def max_notification_id(self) -> int:
        return self.store.max_notification_id()


def test_every_model_catches_up_on_one_read_and_one_decode_per_event(
        database: Database, store: EventStore, run: Run) -> None:
    source = CountingSource(store)
    every = build_projector(database.connect, database.kind, source, batch_size=5)
    try:
        every.catch_up()
    finally:
        every.close()
    end = store.max_notification_id()
    assert sorted(source.decoded) == list(range(1, end + 1))
    assert every.positions() == dict.fromkeys(names(), end)
