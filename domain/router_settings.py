"""The router's operator settings as an aggregate, so changing one is a ledger event like any
other policy change: who set what, and when (the event's own timestamp, UTC).

Today it holds one switch, the preference gate: whether a client's `routing_preference` may
move the quality floor (`domain.routing.effective_policy`). Until an operator sets it on the
ledger, the gateway's environment (`AINFERA_ROUTING_PREFERENCE_LIVE`) decides; once set, the
ledger does, in every gateway, within their cache time. The setting belongs to no tenant, so
its events carry an empty tenant id. Nothing here does I/O.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate, event

from domain.events import AuditedEvent
from domain.ids import router_settings_id

# The tenant id of events that belong to the whole gateway rather than to a tenant.
NO_TENANT = ""


class RouterSettings(Aggregate):
    class Event(AuditedEvent):
        pass

    @staticmethod
    def create_id(**_: Any) -> UUID:
        return router_settings_id()

    @event("RouterSettingsCreated")
    def __init__(self) -> None:
        # None: never set on the ledger, so the environment's value is in force.
        self.preference_live: bool | None = None
        self.set_by: str | None = None

    def set_preference_live(self, live: bool, actor: str) -> None:
        """Records the gate's new state and who set it (setting it again to the same value is
        recorded too: the audit trail says someone confirmed it)."""
        if not isinstance(live, bool):
            raise InvalidRouterSettingError(f"preference_live must be true or false, not {live!r}")
        check_actor(actor)
        self._set_preference_live(live, actor)

    @event("PreferenceLiveSet")
    def _set_preference_live(self, live: bool, actor: str) -> None:
        self.preference_live = live
        self.set_by = actor

    def preference_live_or(self, default: bool) -> bool:
        return default if self.preference_live is None else self.preference_live


def check_actor(actor: str) -> None:
    if not actor or len(actor) > 200 or not actor.isprintable() or actor.strip() != actor:
        raise InvalidRouterSettingError(
            f"invalid actor {actor!r}: 1-200 printable characters, no surrounding spaces")


class RouterSettingsError(Exception):
    """Base of the router settings' errors."""


class InvalidRouterSettingError(RouterSettingsError):
    """A setting or an actor that cannot be recorded as given."""
