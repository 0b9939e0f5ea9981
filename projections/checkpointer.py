"""The checkpointer: signs a C2SP tlog-checkpoint of the ledger's tree at least every second
while the tree grows, and at once when asked, storing each note in `ledger_checkpoints`.

What it must never do is sign two trees that are not one the prefix of the other: before
signing size n it recomputes the root of the latest stored checkpoint's size from the table
and refuses (logging why, signing nothing more) when it differs, so a ledger rebuilt from an
edited event store can never get a fork signed. Several checkpointers (one per gateway, plus
`ainfera project`) may run together: Ed25519 signatures are deterministic, so two processes
signing the same size write the same note, and the insert ignores the second.

The key is whatever `NoteSigner` the composition root passes in; this room never sees key
material.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from domain.checkpoint import Checkpoint, NoteSigner, sign_note
from projections.ledger_tables import LedgerTables, StoredCheckpoint
from projections.view import Connect, Session, utc_text

log = logging.getLogger("ainfera.ledger")

DEFAULT_INTERVAL_S = 0.5
"""Half the one-second bound, so a check that lands just before a batch commits still leaves
a whole interval to sign it."""


def sign_latest(session: Session, signer: NoteSigner, origin: str) -> StoredCheckpoint | None:
    """Signs and stores a checkpoint of the whole current tree if it is larger than the latest
    signed one; returns it, or None when there was nothing new. Raises ForkError when the
    table no longer holds the tree of the latest checkpoint."""
    # No transaction: rows below the tree size never change, so each read may see its own
    # snapshot, and one INSERT needs no lock beyond its own (no write lock held while hashing).
    tables = LedgerTables(session)
    size, _ = tables.head()
    latest = tables.latest_checkpoint()
    if size == 0 or (latest is not None and latest.size >= size):
        return None
    tree = tables.tree()
    if latest is not None and tree(0, latest.size) != latest.root:
        raise ForkError(
            f"the ledger's first {latest.size} leaves no longer have the root of the signed "
            f"checkpoint of that size: refusing to sign; run `ainfera verify`"
        )
    root = tree(0, size)
    note = sign_note(Checkpoint(origin, size, root).text, [signer])
    checkpoint = StoredCheckpoint(size, root, note)
    tables.add_checkpoint(checkpoint, utc_text(datetime.now(UTC)))
    return checkpoint


class Checkpointer:
    """Runs `sign_latest` on its own thread and connection every `interval` seconds, and as
    soon as `request()` is called."""

    def __init__(self, connect: Connect, kind: str, signer: NoteSigner, origin: str,
                 interval: float = DEFAULT_INTERVAL_S) -> None:
        self._connect = connect
        self._kind = kind
        self._signer = signer
        self._origin = origin
        self._interval = interval
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self.signed = 0
        self.last_error: str | None = None

    def start(self) -> None:
        self._stopping.clear()
        self._thread = threading.Thread(target=self._loop, name="ledger-checkpointer",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def request(self) -> None:
        """Signs on demand: the thread checks the tree now instead of at its next tick."""
        self._wake.set()

    def _loop(self) -> None:
        session: Session | None = None
        try:
            while not self._stopping.is_set():
                try:
                    if session is None:
                        session = Session(self._connect(), self._kind)
                    if sign_latest(session, self._signer, self._origin) is not None:
                        self.signed += 1
                    self.last_error = None
                except ForkError as exc:
                    # Not transient: signing anything more would put a fork on record.
                    self.last_error = str(exc)
                    log.error("ledger checkpointer stopped: %s", exc)
                    return
                except Exception as exc:
                    self.last_error = f"{type(exc).__name__}: {exc}"
                    log.warning("ledger checkpointer: %s; retrying", self.last_error)
                    if session is not None:
                        session.close()
                    session = None
                if self._wake.wait(self._interval):
                    self._wake.clear()
        finally:
            if session is not None:
                session.close()


class ForkError(Exception):
    """The stored tree no longer extends the latest signed checkpoint."""
