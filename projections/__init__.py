"""Read models: one module per projection, each a fold from a batch of events to rows with its
SQL in one place, all driven by the one projector (projector.py) that writes every model's rows
and tracking position in one transaction per batch. Never imports app or adapters: the
composition root hands in the database connections and the event store."""
