"""The read models on both backends: exactly the expected rows for a mixed run, the same tables
however often a runner is stopped, crashed, doubled or rebuilt, and a running runner that
follows new events and serves `wait_for`."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from eventsourcing.persistence import Tracking

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from domain.routing import ROUTER
from projections.events import Completed
from projections.registry import PROJECTIONS, build_runner, build_runners
from projections.routing_outcomes import RoutingOutcomes
from projections.runner import ProjectionRunner
from projections.usage_daily import UsageDaily
from projections.view import SqlView, utc_text
from tests.mixed_run import CANDIDATES, Run, dump_all, mixed_run, record


@pytest.fixture
def database(database_url: str) -> Database:
    database = Database.from_url(database_url)
    migrate(database)
    return database


@pytest.fixture
def store(database: Database) -> Iterator[EventStore]:
    store = EventStore(database)
    yield store
    store.close()


@pytest.fixture
def run(store: EventStore) -> Run:
    return mixed_run(store)


def catch_up_all(database: Database, store: EventStore, **options: Any) -> None:
    for runner in build_runners(database.connect, database.kind, store, **options):
        runner.catch_up()
        runner.view.close()


def rebuilt_dump(database: Database, store: EventStore) -> dict[str, list[tuple[Any, ...]]]:
    """The tables as an uninterrupted run from zero makes them."""
    for cls in PROJECTIONS:
        runner = build_runner(cls, database.connect, database.kind, store)
        runner.view.reset(cls.tables)
        runner.catch_up()
        runner.view.close()
    return dump_all(database)


def when(store: EventStore, run: Run, name: str, index: int) -> str:
    event: Any = store.events_of(run.ids[name])[index]
    return utc_text(event.timestamp)


def test_a_mixed_run_projects_exactly_the_expected_rows(
        database: Database, store: EventStore, run: Run) -> None:
    catch_up_all(database, store)
    tables = dump_all(database)
    a, b, bot, default = (str(run.tenant_a), str(run.tenant_b), str(run.bot_a),
                          str(run.agent_a))
    ruleset = "sha256:" + "ab" * 32

    def outcome(name: str, api: str, requested: str, alias: str | None, chosen: str | None,
                status: str, latency: int, cost: str | None, tenant: str = a,
                agent: str = bot) -> tuple[Any, ...]:
        return (str(run.ids[name]), tenant, agent, api, requested, alias, chosen, "0.70",
                "balanced", ruleset, status, latency, cost, when(store, run, name, 0),
                when(store, run, name, -1 if cost is None else -2))

    assert tables["routing_outcomes"] == sorted([
        outcome("routed", "messages", ROUTER, None, "gpt-5-mini", "succeeded", 120, "0.001200"),
        outcome("fallback", "chat.completions", "ainfera-auto", "ainfera-auto", "gpt-5-mini",
                "fallback_succeeded", 300, "0.000800"),
        outcome("rejected", "messages", ROUTER, None, None, "rejected_floor", 2, None),
        outcome("failed", "messages", ROUTER, None, "gpt-5-mini", "failed", 50, "0"),
        outcome("cancelled", "messages", ROUTER, None, "gpt-5-mini", "cancelled", 900,
                "0.000300"),
        outcome("other_tenant", "messages", ROUTER, None, "gpt-5-mini", "succeeded", 70,
                "0.000500", tenant=b, agent=_default_of(store, run)),
    ])
    assert str(run.ids["direct"]) not in {row[0] for row in tables["routing_outcomes"]}

    day = when(store, run, "routed", 0)[:10]
    assert tables["usage_daily"] == sorted([
        (a, bot, day, 5, "0.002300", 2, 1, 3),
        (a, default, day, 1, "0.000100", 1, 0, 0),
        (b, _default_of(store, run), day, 1, "0.000500", 1, 0, 0),
    ])
    assert len(tables["usage_daily_inferences"]) == 7

    metrics = {row[0]: row[3:7] for row in tables["agent_metrics"]}
    assert metrics == {
        str(run.ids["routed"]): (ROUTER, "succeeded", 120, "0.001200"),
        str(run.ids["fallback"]): (ROUTER, "fallback_succeeded", 300, "0.000800"),
        str(run.ids["rejected"]): (ROUTER, "rejected_floor", 2, None),
        str(run.ids["failed"]): (ROUTER, "failed", 50, "0"),
        str(run.ids["cancelled"]): (ROUTER, "cancelled", 900, "0.000300"),
        str(run.ids["direct"]): ("direct", "succeeded", 80, "0.000100"),
        str(run.ids["other_tenant"]): (ROUTER, "succeeded", 70, "0.000500"),
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

    assert sorted((row[1], row[2], row[3]) for row in tables["agents"]) == sorted(
        [(a, "default", None), (a, "bot", "7.50"), (b, "default", None)])

    end = store.max_notification_id()
    assert {row[0]: row[2] for row in tables["projection_tracking"]} == {
        cls.name: end for cls in PROJECTIONS}


def _default_of(store: EventStore, run: Run) -> str:
    routed: Any = store.events_of(run.ids["other_tenant"])[0]
    return str(routed.agent_id)


@pytest.mark.parametrize("stop_after", [1, 7, 19])
def test_a_runner_stopped_half_way_resumes_to_the_same_tables(
        database: Database, store: EventStore, run: Run, stop_after: int) -> None:
    for cls in PROJECTIONS:
        first = build_runner(cls, database.connect, database.kind, store, batch_size=3)
        assert first.catch_up(max_events=stop_after) == stop_after
        first.view.close()  # the process "dies" here; only committed batches remain
    partial = dump_all(database)
    assert {row[2] for row in partial["projection_tracking"]} == {stop_after}
    catch_up_all(database, store, batch_size=4)
    resumed = dump_all(database)
    assert resumed == rebuilt_dump(database, store)
    assert resumed != partial


class CrashingOutcomes(RoutingOutcomes):
    """Dies on the third Completed, as a process killed mid-batch would."""

    def __init__(self, view: SqlView) -> None:
        super().__init__(view)
        self.completed = 0

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        if isinstance(domain_event, Completed):
            self.completed += 1
            if self.completed == 3:
                raise RuntimeError("killed mid-batch")
        super().process_event(domain_event, tracking)


def test_a_batch_that_dies_half_way_leaves_nothing_behind(
        database: Database, store: EventStore, run: Run) -> None:
    view = SqlView(RoutingOutcomes.name, database.connect, database.kind)
    crashing = ProjectionRunner(CrashingOutcomes(view=view), store, batch_size=1000)
    with pytest.raises(RuntimeError, match="killed mid-batch"):
        crashing.run_once()
    view.close()
    after_crash = dump_all(database)
    assert after_crash["routing_outcomes"] == []
    assert [r for r in after_crash["projection_tracking"] if r[0] == "routing_outcomes"] == []
    catch_up_all(database, store)
    assert dump_all(database) == rebuilt_dump(database, store)


def test_two_runners_at_once_never_apply_an_event_twice(
        database: Database, store: EventStore, run: Run) -> None:
    for _ in range(3):  # more events, so the runners overlap for longer
        record(store, run.tenant_a, run.bot_a, "more", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000001")
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def race(cls: type[UsageDaily] | type[RoutingOutcomes]) -> None:
        runner = build_runner(cls, database.connect, database.kind, store, batch_size=2)
        try:
            start.wait()
            runner.catch_up()
        except BaseException as exc:
            errors.append(exc)
        finally:
            runner.view.close()

    threads = [threading.Thread(target=race, args=(cls,))
               for cls in (UsageDaily, UsageDaily, RoutingOutcomes, RoutingOutcomes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    raced = dump_all(database)
    assert raced["usage_daily"] == rebuilt_dump(database, store)["usage_daily"]
    bot_today = [r for r in raced["usage_daily"] if r[1] == str(run.bot_a)]
    assert [(r[3], r[4]) for r in bot_today] == [(8, "0.002303")]


def test_a_running_runner_follows_new_events_and_serves_wait_for(
        database: Database, store: EventStore, run: Run) -> None:
    runner = build_runner(RoutingOutcomes, database.connect, database.kind, store,
                          poll_interval=5.0)
    runner.start()
    try:
        assert runner.wait_for(store.max_notification_id(), timeout=10)
        new = record(store, run.tenant_a, run.bot_a, "late", router=ROUTER, requested=ROUTER,
                     chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.5")
        # The poll is 5 s: answering well within it shows wait_for woke the runner.
        assert runner.wait_for(store.max_notification_id(), timeout=2)
        assert runner.lag() == 0
        assert not runner.wait_for(store.max_notification_id() + 1, timeout=0.2)
    finally:
        runner.stop()
    costs = {row[0]: row[12] for row in dump_all(database)["routing_outcomes"]}
    assert costs[str(new)] == "0.5"
    assert Decimal(costs[str(run.ids["routed"])]) == Decimal("0.0012")


def test_a_rebuild_while_a_runner_is_running_ends_in_the_same_tables(
        database: Database, store: EventStore, run: Run) -> None:
    background = build_runner(UsageDaily, database.connect, database.kind, store,
                              batch_size=2, poll_interval=0.01)
    background.start()
    try:
        assert background.wait_for(store.max_notification_id(), timeout=10)
        rebuilder = build_runner(UsageDaily, database.connect, database.kind, store,
                                 batch_size=2)
        rebuilder.view.reset(UsageDaily.tables)
        record(store, run.tenant_a, run.bot_a, "during", router=ROUTER, requested=ROUTER,
               chosen="gpt-5-mini", candidates=CANDIDATES, cost="0.000001")
        rebuilder.catch_up()
        rebuilder.view.close()
        assert background.wait_for(store.max_notification_id(), timeout=10)
    finally:
        background.stop()
    assert background.last_error is None
    live = dump_all(database)["usage_daily"]
    assert live == rebuilt_dump(database, store)["usage_daily"]
    assert [(r[3], r[4]) for r in live if r[1] == str(run.bot_a)] == [(6, "0.002301")]


def test_an_idle_runner_notices_a_rebuild_without_new_events(
        database: Database, store: EventStore, run: Run) -> None:
    idle = build_runner(RoutingOutcomes, database.connect, database.kind, store,
                        poll_interval=0.01)
    idle.start()
    try:
        assert idle.wait_for(store.max_notification_id(), timeout=10)
        interrupted = build_runner(RoutingOutcomes, database.connect, database.kind, store)
        interrupted.view.reset(RoutingOutcomes.tables)  # a rebuild killed right after reset
        interrupted.view.close()
        assert dump_all(database)["routing_outcomes"] == []
        deadline = time.monotonic() + 10
        while len(dump_all(database)["routing_outcomes"]) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        idle.stop()
    live = dump_all(database)["routing_outcomes"]
    assert live == rebuilt_dump(database, store)["routing_outcomes"]
