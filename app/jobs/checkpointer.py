"""The ledger's long-lived pieces in one process: the signing key and the checkpointer.

The key is read from `AINFERA_SIGNING_KEY_FILE` and created there (mode 0600, with one log
line naming the file, never the key) when missing, so a first `ainfera serve` just works and
every later process signs with the same key. The checkpointer runs wherever projections run:
in the gateway with in-process projections, and in `ainfera project`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from adapters.database import Database
from adapters.signer import Ed25519NoteSigner, verify_note
from app.settings import Settings
from projections.checkpointer import Checkpointer, sign_latest
from projections.ledger_entries import LedgerEntries
from projections.ledger_verify import OpenCheckpoint
from projections.view import Session

log = logging.getLogger("ainfera.ledger")


@dataclass
class Ledger:
    origin: str
    signer: Ed25519NoteSigner
    checkpointer: Checkpointer | None = None

    @property
    def vkey(self) -> str:
        """The verifier key, in note form, that `GET /v1/ledger/public-key` publishes."""
        return self.signer.vkey

    def request_checkpoint(self) -> None:
        """Asks for a checkpoint now (a receipt is waiting for one); no-op where this process
        does not sign."""
        if self.checkpointer is not None:
            self.checkpointer.request()

    def checkpointer_error(self) -> str | None:
        """Why this process's checkpointer is not signing (None: it is, or it does not sign
        here): a refusal to sign a fork, or a failure it keeps retrying."""
        return None if self.checkpointer is None else self.checkpointer.last_error

    def close(self) -> None:
        if self.checkpointer is not None:
            self.checkpointer.stop()


def load_signer(settings: Settings) -> Ed25519NoteSigner:
    """The log's signing key, named after the log origin (C2SP convention)."""
    return Ed25519NoteSigner.load_or_create(Path(settings.signing_key_file), settings.log_origin)


def open_ledger(settings: Settings, database: Database, *, sign: bool) -> Ledger:
    """Loads the key; with `sign`, starts a checkpointer on its own connection."""
    signer = load_signer(settings)
    ledger = Ledger(origin=settings.log_origin, signer=signer)
    if sign:
        ledger.checkpointer = Checkpointer(database.connect, database.kind, signer,
                                           settings.log_origin)
        ledger.checkpointer.start()
        log.info("ledger checkpointer started for %s (key %s)", settings.log_origin, signer.vkey)
    return ledger


def checkpoint_opener(settings: Settings) -> OpenCheckpoint | None:
    """Checks a stored checkpoint note against the configured key, for `ainfera verify`.
    None when there is no key file: verify must not create a key, and then notes are only
    parsed (a forged signature would go unnoticed, which verify's caller is told)."""
    path = Path(settings.signing_key_file)
    if not path.exists():
        log.warning("no signing key at %s: checkpoint signatures are not checked", path)
        return None
    vkey = load_signer(settings).vkey
    return partial(verify_note, vkey=vkey)


@contextmanager
def checkpointing(settings: Settings, database: Database, only: Sequence[str] | None, *,
                  once: bool) -> Iterator[None]:
    """For `ainfera project`: while the block runs the sequencer (every projection, or
    `only` naming ledger_entries), a checkpointer signs alongside it; with `once`, one
    checkpoint of what the block sequenced is signed when it ends."""
    if only and LedgerEntries.name not in only:
        yield
        return
    if once:
        yield
        session = Session(database.connect(), database.kind)
        try:
            signed = sign_latest(session, load_signer(settings), settings.log_origin)
        finally:
            session.close()
        if signed is not None:
            log.info("signed a checkpoint of %d leaves", signed.size)
        return
    ledger = open_ledger(settings, database, sign=True)
    try:
        yield
    finally:
        ledger.close()
