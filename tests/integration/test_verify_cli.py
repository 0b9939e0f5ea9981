"""`ainfera project`, `verify` and `rebuild` as an operator runs them (subprocesses), on both
backends: verify passes on a clean store, fails naming the row after a hand edit, and passes
again once the projection is rebuilt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from domain.ids import public_inference_id
from domain.routing import ROUTER
from tests.mixed_run import CANDIDATES, Run, dump_all, mixed_run, record

AINFERA = str(Path(sys.executable).with_name("ainfera"))


KEY_FILE: dict[str, str] = {}


def ainfera(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    # `project --once` signs a checkpoint: its key goes to the test's own directory.
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url,
           "AINFERA_SIGNING_KEY_FILE": KEY_FILE["path"]}
    return subprocess.run([AINFERA, *args], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


@pytest.fixture(autouse=True)
def key_file(tmp_path: Path) -> None:
    KEY_FILE["path"] = str(tmp_path / "signing.key")


@pytest.fixture
def recorded(database_url: str) -> Iterator[tuple[Database, Run]]:
    database = Database.from_url(database_url)
    migrate(database)
    store = EventStore(database)
    try:
        yield database, mixed_run(store)
    finally:
        store.close()


def execute(database: Database, statement: str, *params: object) -> int:
    conn = database.connect()
    try:
        return int(conn.execute(database.sql(statement), params).rowcount)
    finally:
        conn.close()


def test_verify_passes_fails_on_a_hand_edit_and_passes_after_rebuild(
        database_url: str, recorded: tuple[Database, Run]) -> None:
    database, run = recorded
    project = ainfera(database_url, "project", "--once", "--json")
    assert project.returncode == 0, project.stderr
    states = {s["projection"]: s for s in json.loads(project.stdout)["projections"]}
    assert states["routing_outcomes"]["lag"] == 0
    assert states["routing_outcomes"]["applied"] > 0

    clean = ainfera(database_url, "verify", "--json")
    assert clean.returncode == 0, clean.stderr
    report = json.loads(clean.stdout)
    assert report["ok"] is True
    assert report["rows"]["routing_outcomes"] == 6

    target = str(run.ids["cancelled"])
    assert execute(database,
                   "UPDATE routing_outcomes SET cost_nano_usd = %s WHERE inference_id = %s",
                   999_999_000, target) == 1
    tampered = ainfera(database_url, "verify")
    assert tampered.returncode == 1
    public = public_inference_id(run.ids["cancelled"], "messages")
    assert tampered.stdout.splitlines()[1] == (
        f"  - routing_outcomes: row inference_id={public}: column cost_nano_usd is 999999000 "
        "live but 300000 in the replay")
    assert target not in tampered.stdout  # the API's id, not the aggregate's UUID
    assert tampered.stderr.strip().startswith("ainfera: error: verify failed: 1 problems "
                                              "(0 ledger, 1 read-models, 0 counters)")

    rebuilt = ainfera(database_url, "rebuild", "routing_outcomes", "--json")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert json.loads(rebuilt.stdout)["applied"] > 0
    assert ainfera(database_url, "verify").returncode == 0


def test_verify_names_a_deleted_row_and_a_forged_one(
        database_url: str, recorded: tuple[Database, Run]) -> None:
    database, run = recorded
    assert ainfera(database_url, "project", "--once").returncode == 0
    routed = str(run.ids["routed"])
    assert execute(database, "DELETE FROM routing_outcomes WHERE inference_id = %s",
                   routed) == 1
    missing = ainfera(database_url, "verify", "--no-catch-up", "--json")
    assert missing.returncode == 1
    body = json.loads(missing.stdout)
    public = public_inference_id(run.ids["routed"], "messages")
    assert body["first_difference"] == (
        f"routing_outcomes: row inference_id={public} is missing from the live table")
    assert f"routed inference {public} has no routing_outcomes row" in body["problems"]

    direct = str(run.ids["direct"])
    execute(database, "UPDATE decisions SET router = %s WHERE inference_id = %s",
            "ainfera-inference", direct)
    forged = ainfera(database_url, "verify", "--no-catch-up", "--json")
    problems = json.loads(forged.stdout)["problems"]
    direct_id = public_inference_id(run.ids["direct"], "messages")
    assert f"passthrough {direct_id} has no direct decision record" in problems


def test_verify_lists_every_finding_grouped_ledger_first(
        database_url: str, recorded: tuple[Database, Run]) -> None:
    """One edited event row in the store and two edited read-model rows: every finding is
    listed, the ledger's first, each inference by its public id, then one summary line."""
    database, run = recorded
    assert ainfera(database_url, "project", "--once").returncode == 0
    events = "stored_events" if database.kind == "sqlite" else "ainfera_events"
    uid = run.ids["routed"]
    key: object = uid.hex if database.kind == "sqlite" else uid
    conn = database.connect()
    try:
        (state,) = conn.execute(database.sql(
            f"SELECT state FROM {events} WHERE originator_id = %s AND originator_version = 1"),
            (key,)).fetchone()
        edited = bytes(state).replace(b'"request_digest":"', b'"request_digest":"x')
        assert edited != bytes(state)
        conn.execute(database.sql(
            f"UPDATE {events} SET state = %s WHERE originator_id = %s AND "
            "originator_version = 1"), (edited, key))
    finally:
        conn.close()
    for name in ("cancelled", "fallback"):
        assert execute(database, "UPDATE routing_outcomes SET cost_nano_usd = %s "
                       "WHERE inference_id = %s", 999_999_000, str(run.ids[name])) == 1
    result = ainfera(database_url, "verify", "--no-catch-up")
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    headers = [line for line in lines if not line.startswith("  - ")]
    assert headers[0].startswith("ledger: the events or the ledger were edited")
    assert headers[1].startswith("read models:")
    assert headers[-1].startswith("verify failed: ")
    findings = [line for line in lines if line.startswith("  - ")]
    ledger = findings[:lines.index(headers[1]) - 1]
    assert any("the event or the ledger was edited" in line for line in ledger)
    assert any("the log was rewritten" in line for line in ledger)
    drift = "\n".join(findings[len(ledger):])
    for name, api in (("cancelled", "messages"), ("fallback", "chat.completions")):
        assert public_inference_id(run.ids[name], api) in drift
        assert str(run.ids[name]) not in drift
    assert headers[-1] == (f"verify failed: {len(findings)} problems ({len(ledger)} ledger, "
                           f"{len(findings) - len(ledger)} read-models, 0 counters) in "
                           f"{headers[-1].split(' in ')[1]}")
    assert len(result.stderr.strip().splitlines()) == 1
    as_json = json.loads(ainfera(database_url, "verify", "--no-catch-up", "--json").stdout)
    assert len(as_json["findings"]["ledger"]) == len(ledger)
    assert as_json["problems"] == [line[4:] for line in findings]


def test_unknown_projection_names_are_refused(database_url: str) -> None:
    for args in (("rebuild", "nope"), ("project", "--once", "--only", "nope")):
        result = ainfera(database_url, *args)
        assert result.returncode == 1
        assert "no projection 'nope'" in result.stderr


def test_a_killed_worker_resumes_to_the_same_tables(
        database_url: str, recorded: tuple[Database, Run]) -> None:
    database, run = recorded
    store = EventStore(database)
    try:
        for n in range(150):
            record(store, run.tenant_a, run.bot_a, f"bulk-{n}", router=ROUTER,
                   requested=ROUTER, chosen="gpt-5-mini", candidates=CANDIDATES,
                   cost="0.000010")
        end = store.max_notification_id()
    finally:
        store.close()
    env = {**os.environ, "AINFERA_DATABASE_URL": database_url,
           "AINFERA_SIGNING_KEY_FILE": KEY_FILE["path"]}
    worker = subprocess.Popen([AINFERA, "project", "--batch-size", "1"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(positions(database).values()):
            time.sleep(0.01)
    finally:
        worker.kill()  # SIGKILL: no clean stop, a batch may be cut off mid-transaction
        worker.wait(30)
    partial = positions(database)
    assert any(0 < p < end for p in partial.values()), partial
    assert ainfera(database_url, "project", "--once").returncode == 0
    resumed = dump_all(database)
    assert ainfera(database_url, "verify").returncode == 0
    for name in partial:
        assert ainfera(database_url, "rebuild", name).returncode == 0
    assert dump_all(database) == resumed


def positions(database: Database) -> dict[str, int]:
    conn = database.connect()
    try:
        return {str(name): int(pos) for name, pos in conn.execute(
            "SELECT projection, notification_id FROM projection_tracking").fetchall()}
    finally:
        conn.close()
