"""The runners of one process decode each stored event once between them."""

from __future__ import annotations

from pathlib import Path

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.services import tenancy
from projections.registry import PROJECTIONS, build_runners
from projections.shared_source import SharedDecodeSource


def test_every_projection_catches_up_on_one_decode_per_event(tmp_path: Path) -> None:
    database = Database.from_url(f"sqlite:///{tmp_path}/shared.db")
    migrate(database)
    store = EventStore(database)
    try:
        for n in range(5):
            tenancy.create_tenant(store, f"tenant-{n}")
        events = store.max_notification_id()
        runners = build_runners(database.connect, database.kind, store)
        try:
            for runner in runners:
                runner.catch_up()
            source = runners[0].source
            assert isinstance(source, SharedDecodeSource)
            assert all(r.source is source for r in runners)
            assert source.misses == events
            assert source.hits == events * (len(PROJECTIONS) - 1)
            assert {r.position() for r in runners} == {events}
        finally:
            for runner in runners:
                runner.view.close()
    finally:
        store.close()
