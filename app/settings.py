"""Settings: read once from the environment at the edge, passed inward explicitly.

Nothing else in the project reads os.environ, so tests build an app with other settings
through the same factory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

DEFAULT_DATABASE_URL = "sqlite:///var/ainfera.db"
DEFAULT_SIGNING_KEY_FILE = "var/signing.key"
DEFAULT_LOG_ORIGIN = "ainfera.local/ledger"
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_ABANDON_AFTER_S = 3600.0
DEFAULT_AUTH_CACHE_TTL_S = 1.0
DEFAULT_HEADER_TIMEOUT_S = 10.0
DEFAULT_KEEPALIVE_TIMEOUT_S = 5.0
DEFAULT_MAX_CONNECTIONS = 1024
DEFAULT_HEARTBEAT_TTL_S = 15.0
DEFAULT_UPSTREAM_READ_TIMEOUT_S = 300.0
LOG_FORMATS = ("text", "json")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    config_path: str | None = None
    signing_key_file: str = DEFAULT_SIGNING_KEY_FILE
    routing_preference_live: bool = False
    log_origin: str = DEFAULT_LOG_ORIGIN
    budget_fail_open: bool = False
    redis_prefix: str = "ainfera:"
    # An inference recorded before inferences named their gateway instance, and open longer
    # than this, is taken for one whose process died (app/services/repair.py).
    abandon_after_s: float = DEFAULT_ABANDON_AFTER_S
    # A gateway unheard of for this long is gone: repair closes the calls it owned.
    heartbeat_ttl_s: float = DEFAULT_HEARTBEAT_TTL_S
    # The longest an upstream may stay silent (and an attempt may take to its answer or first
    # content) before the attempt fails as a timeout.
    upstream_read_timeout_s: float = DEFAULT_UPSTREAM_READ_TIMEOUT_S
    # How long an API key's check is reused; a revocation takes effect within it (0: never).
    auth_cache_ttl_s: float = DEFAULT_AUTH_CACHE_TTL_S
    # Whether THIS process runs the projector and the checkpointer (the embedded topology).
    run_projections: bool = True
    # Where `ainfera serve` runs them: "process" (a child it supervises), "inprocess", "off"
    # (a separate `ainfera project` does).
    projector: str = "process"
    host: str = DEFAULT_HOST
    port: int = DEFAULT_PORT
    # Server hardening (app.http.server): a request's headers must arrive within this time;
    # an idle keep-alive connection is closed after this; connections above this are refused.
    header_timeout_s: float = DEFAULT_HEADER_TIMEOUT_S
    keepalive_timeout_s: float = DEFAULT_KEEPALIVE_TIMEOUT_S
    max_connections: int = DEFAULT_MAX_CONNECTIONS
    log_format: str = "text"  # "json": one JSON object per log line
    # Where provider API keys are looked up by the names the catalog gives (`api_key_env`).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls(
            database_url=env.get("AINFERA_DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=env.get("AINFERA_REDIS_URL") or None,
            config_path=env.get("AINFERA_CONFIG") or None,
            signing_key_file=env.get("AINFERA_SIGNING_KEY_FILE") or DEFAULT_SIGNING_KEY_FILE,
            routing_preference_live=_flag(env.get("AINFERA_ROUTING_PREFERENCE_LIVE")),
            log_origin=env.get("AINFERA_LOG_ORIGIN") or DEFAULT_LOG_ORIGIN,
            budget_fail_open=_flag(env.get("AINFERA_BUDGET_FAIL_OPEN")),
            redis_prefix=env.get("AINFERA_REDIS_PREFIX") or "ainfera:",
            abandon_after_s=_seconds(env, "AINFERA_ABANDON_AFTER_S", DEFAULT_ABANDON_AFTER_S),
            heartbeat_ttl_s=_positive(env, "AINFERA_HEARTBEAT_TTL_S", DEFAULT_HEARTBEAT_TTL_S),
            upstream_read_timeout_s=_positive(env, "AINFERA_UPSTREAM_READ_TIMEOUT_S",
                                              DEFAULT_UPSTREAM_READ_TIMEOUT_S),
            auth_cache_ttl_s=_seconds(env, "AINFERA_AUTH_CACHE_TTL_S",
                                      DEFAULT_AUTH_CACHE_TTL_S),
            run_projections=not _flag(env.get("AINFERA_NO_INPROCESS_PROJECTIONS")),
            projector=_projector_mode(env),
            host=env.get("AINFERA_HOST") or DEFAULT_HOST,
            port=_port(env.get("AINFERA_PORT")),
            header_timeout_s=_positive(env, "AINFERA_HEADER_TIMEOUT_S", DEFAULT_HEADER_TIMEOUT_S),
            keepalive_timeout_s=_positive(env, "AINFERA_KEEPALIVE_TIMEOUT_S",
                                          DEFAULT_KEEPALIVE_TIMEOUT_S),
            max_connections=int(_positive(env, "AINFERA_MAX_CONNECTIONS",
                                          DEFAULT_MAX_CONNECTIONS)),
            log_format=_log_format(env.get("AINFERA_LOG_FORMAT")),
            environ=dict(env),
        )

    def with_(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]


PROJECTOR_MODES = ("process", "inprocess", "off")


def _projector_mode(env: Mapping[str, str]) -> str:
    mode = (env.get("AINFERA_PROJECTOR") or "").strip().lower()
    if not mode:
        # The older switch keeps meaning what it meant: a separate worker runs them.
        return "off" if _flag(env.get("AINFERA_NO_INPROCESS_PROJECTIONS")) else "process"
    if mode not in PROJECTOR_MODES:
        raise SettingsError(f"AINFERA_PROJECTOR must be one of {', '.join(PROJECTOR_MODES)}, "
                            f"not {mode!r}")
    return mode


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    value = env.get(name)
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        raise SettingsError(f"{name} must be a number of seconds, not {value!r}") from None
    if seconds < 0:
        raise SettingsError(f"{name} must not be negative")
    return seconds


def _positive(env: Mapping[str, str], name: str, default: float) -> float:
    value = _seconds(env, name, default)
    if value <= 0:
        raise SettingsError(f"{name} must be more than 0")
    return value


def _log_format(value: str | None) -> str:
    chosen = (value or "text").strip().lower()
    if chosen not in LOG_FORMATS:
        raise SettingsError(f"AINFERA_LOG_FORMAT must be text or json, not {value!r}")
    return chosen


def _port(value: str | None) -> int:
    if not value:
        return DEFAULT_PORT
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(f"AINFERA_PORT must be a port number, not {value!r}") from None
    if not 0 < port < 65536:
        raise SettingsError(f"AINFERA_PORT must be between 1 and 65535, not {port}")
    return port


class SettingsError(ValueError):
    """A setting in the environment is not usable."""
