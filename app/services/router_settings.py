"""Router settings services: set the preference gate on the ledger, and read what is in force.

Thin application services like `app.services.tenancy`: load, call a domain method, save. The
write path reads the gate through a `PreferenceGate`, which caches the read for
PREFERENCE_GATE_TTL_S; the CLI writes it (`ainfera router preference-live on|off`).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from adapters.store import AggregateMissingError, EventStore, StoreConflictError
from domain.context import audit_context
from domain.ids import router_settings_id
from domain.router_settings import NO_TENANT, RouterSettings

# Two operators flipping the gate at the same moment conflict on the aggregate's version;
# the loser reloads and records its flip after the winner's.
SAVE_ATTEMPTS = 3
# How long a gateway trusts a read of the gate: a flip reaches every gateway within it.
PREFERENCE_GATE_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class GateState:
    """The gate in force and where it comes from: the ledger (with who set it and when) or
    the environment's initial value."""

    preference_live: bool
    source: str  # "ledger" | "environment"
    set_by: str | None = None
    set_at: datetime | None = None


def set_preference_live(store: EventStore, live: bool, actor: str) -> GateState:
    """Records a PreferenceLiveSet event; gateways apply it within their cache time."""
    for _ in range(SAVE_ATTEMPTS):
        with audit_context(NO_TENANT, None, f"admin_{uuid.uuid4().hex}"):
            try:
                settings = store.get(router_settings_id(), RouterSettings)
            except AggregateMissingError:
                settings = RouterSettings()
            settings.set_preference_live(live, actor)
        try:
            store.save_events(settings.collect_events())
        except StoreConflictError:
            continue
        # Every event after creation sets the gate, so the last one's time is the setting's.
        return GateState(live, "ledger", actor, settings.modified_on)
    raise ConcurrentGateChangeError(
        "the preference gate was changed at the same time; run the command again")


def gate_state(store: EventStore, initial: bool) -> GateState:
    """The gate in force: the ledger's setting, or `initial` (the environment) if none."""
    try:
        settings = store.get(router_settings_id(), RouterSettings)
    except AggregateMissingError:
        return GateState(initial, "environment")
    if settings.preference_live is None:
        return GateState(initial, "environment")
    return GateState(settings.preference_live, "ledger", settings.set_by, settings.modified_on)


def preference_live(store: EventStore, initial: bool) -> bool:
    """The gate in force, read from the ledger (one aggregate read): the hot path's form."""
    try:
        return store.get(router_settings_id(), RouterSettings).preference_live_or(initial)
    except AggregateMissingError:
        return initial


class PreferenceGate:
    """The gate as the write path sees it: read from the ledger at most every
    PREFERENCE_GATE_TTL_S (one aggregate read, off the event loop), so a flip applies within
    that time without a read per call; `initial` (the environment's value) until an operator
    has set it. A store that cannot be read raises the store's error, as a cap read does."""

    def __init__(self, store: EventStore, initial: bool) -> None:
        self._store = store
        self._initial = initial
        self._cached: tuple[float, bool] | None = None

    async def live(self) -> bool:
        now = time.monotonic()
        if self._cached is not None and self._cached[0] > now:
            return self._cached[1]
        live = await asyncio.to_thread(preference_live, self._store, self._initial)
        self._cached = (now + PREFERENCE_GATE_TTL_S, live)
        return live


class RouterSettingsServiceError(Exception):
    """Base of the router settings services' errors."""


class ConcurrentGateChangeError(RouterSettingsServiceError):
    pass
