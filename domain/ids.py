"""Identifiers: deterministic aggregate ids for named things, and public inference ids.

Tenants, agents and keys get name-derived (UUIDv5) ids so that lookup by name or by presented
key is a direct aggregate read, and so that creating the same name twice is refused by the event
store's own uniqueness rather than by a racy check.
"""

from __future__ import annotations

import hashlib
import secrets
from uuid import UUID, uuid5

_NAMESPACE = UUID("5b0c4f2e-8a31-4d5e-9c1a-6f7e2d3b4a10")

KEY_PREFIX = "ak_"
MESSAGES_PREFIX = "msg_"
CHAT_PREFIX = "chatcmpl-"


def tenant_id_for(name: str) -> UUID:
    return uuid5(_NAMESPACE, f"tenant:{name}")


def agent_id_for(tenant_id: UUID, name: str) -> UUID:
    return uuid5(_NAMESPACE, f"agent:{tenant_id}:{name}")


def hash_api_key(key: str) -> str:
    """The stored form of a key: its SHA-256. Keys are 256-bit random, so no salt or KDF is
    needed to resist guessing, and a fast hash keeps auth off the hot path."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_id_for(key_hash: str) -> UUID:
    return uuid5(_NAMESPACE, f"key:{key_hash}")


def router_settings_id() -> UUID:
    """The one RouterSettings aggregate of a ledger: fixed, so every process finds it."""
    return uuid5(_NAMESPACE, "router-settings")


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def public_inference_id(inference_id: UUID, api: str) -> str:
    """`msg_<hex>` for the Messages API, `chatcmpl-<hex>` for Chat Completions."""
    prefix = MESSAGES_PREFIX if api == "messages" else CHAT_PREFIX
    return prefix + inference_id.hex


def parse_inference_id(public_id: str) -> UUID:
    """Accepts `msg_<hex>`, `chatcmpl-<hex>` or a bare UUID; raises ValueError otherwise."""
    for prefix in (MESSAGES_PREFIX, CHAT_PREFIX):
        if public_id.startswith(prefix):
            public_id = public_id[len(prefix):]
            break
    return UUID(public_id)
