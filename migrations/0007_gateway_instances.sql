-- Gateway instances and their heartbeats (adapters/instances.py): each gateway process
-- refreshes its row every few seconds while it runs and stamps `stopped_at` when it stops
-- cleanly. Crash repair closes an open inference as `abandoned` only when the row of the
-- instance that owns it (Routed.instance_id) says that instance is gone. Times are
-- fixed-width ISO 8601 UTC text; `beats_since` is when the instance's current unbroken run of
-- heartbeats began, so a reader can tell that the store has been up long enough to judge.
CREATE TABLE gateway_instances (
    instance_id  TEXT PRIMARY KEY,
    started_at   TEXT NOT NULL,
    heartbeat_at TEXT NOT NULL,
    beats_since  TEXT NOT NULL,
    stopped_at   TEXT
);
