"""Read models: one module per projection, event -> SQL, with the tracking position written in
the same transaction as the rows (eventsourcing.projection). Never imports app or adapters: the
composition root hands in the database connections and the event store (see runner.py)."""
