"""The two client surfaces and the request every provider receives.

A provider is handed the client's request as the client wrote it (routing hint removed). A
backend that speaks the caller's own protocol is sent that body, so nothing the client asked
for is lost on the way; a backend of another protocol is sent a translation, field by field as
`domain.protocols.fates` decides (a Messages body is itself the canonical form the translators
read; a chat body is translated from its own shape). Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

# The surfaces are the Routed event's `api` values: one definition, the event's.
from domain.inference import CHAT, MESSAGES
from domain.protocols.canonical import JSON

__all__ = ["CHAT", "MESSAGES", "NATIVE_KIND", "PROVIDER_KINDS", "ROUTING_FIELDS", "WireRequest"]

# The provider kind that speaks each surface's protocol natively.
NATIVE_KIND: Final = {MESSAGES: "anthropic", CHAT: "openai"}  # POST /v1/messages, /chat/...
PROVIDER_KINDS: Final = ("anthropic", "openai", "gemini")
# Body fields that are the gateway's, never a backend's: the model the client asked for (the
# backend is sent its own model id) and the routing hint.
ROUTING_FIELDS: Final = frozenset({"model", "routing_hint"})


@dataclass(frozen=True, slots=True)
class WireRequest:
    """One client request as providers need it.

    `body` is what the client sent, without `routing_hint`; its `model` is still the client's
    and `stream` is whatever the client set (each provider sets its own).
    """

    surface: str
    body: JSON

    @classmethod
    def messages(cls, body: JSON) -> WireRequest:
        return cls(MESSAGES, body)

    @classmethod
    def chat(cls, body: JSON) -> WireRequest:
        return cls(CHAT, body)

    def native_to(self, kind: str) -> bool:
        """Whether a backend of `kind` speaks this request's own protocol."""
        return NATIVE_KIND[self.surface] == kind
