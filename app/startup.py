"""What a gateway says when it starts: which config it read, which providers it can dispatch
to (and which variable would enable the others), which models it serves, where its store and
counters are, and who runs the projections. A newcomer reading the first lines of the log can
tell why a model answers 502 `provider_not_configured` or where the events went.

Never logged: a key's value (only whether its variable is set) or a database password.
"""

from __future__ import annotations

import logging
from typing import Any

from adapters.database import Database
from app.logs import redact_url
from app.runtime import Runtime

log = logging.getLogger("ainfera.startup")
PROJECTOR_TEXT = {
    "process": "run by a supervised child process of this gateway (`ainfera project`)",
    "inprocess": "run in this process",
    "off": "run elsewhere, by a separate `ainfera project` worker",
}


def _say(message: str, **fields: Any) -> None:
    # The message says everything the fields hold: text shows the message, JSON both.
    log.info(message, extra={"fields": fields, "in_message": tuple(fields)})


def log_startup(runtime: Runtime) -> None:
    settings, catalog = runtime.settings, runtime.catalog
    config = settings.config_path or "built-in catalog (config/ainfera.example.toml)"
    _say(f"config: {config}", config=settings.config_path)
    ready = [p for p in catalog.providers if p.name in runtime.providers]
    missing = [p for p in catalog.providers if p.name not in runtime.providers]
    _say(f"providers: {len(ready)} with a key ({', '.join(p.name for p in ready) or 'none'}); "
         f"{len(missing)} without ("
         + (", ".join(f"{p.name}: set {p.api_key_env}" for p in missing) or "none") + ")",
         providers_with_key=[p.name for p in ready],
         providers_without_key={p.name: p.api_key_env for p in missing})
    served = [m.slug for m in catalog.models if m.provider in runtime.providers]
    _say(f"models: {catalog.router.canonical} routes over {len(served)} of "
         f"{len(catalog.models)} catalog models ("
         + (", ".join(served) or "none: every call fails until a provider has a key") + ")",
         router=catalog.router.canonical, models=served)
    database = runtime.database
    _say(f"store: {_store_text(database)}", store=database.kind,
         database_url=redact_url(database.url))
    counters = (f"Redis {redact_url(settings.redis_url)} (prefix {settings.redis_prefix!r})"
                if settings.redis_url else "in-process (this gateway only)")
    _say(f"counters: {counters}; when they fail, calls are "
         f"{'served (fail open)' if settings.budget_fail_open else 'refused (fail closed)'}",
         counters="redis" if settings.redis_url else "in-process",
         fail_open=settings.budget_fail_open)
    mode = PROJECTOR_TEXT.get(settings.projector, settings.projector)
    _say(f"projections: {mode}; checkpoints signed with {settings.signing_key_file}",
         projections=settings.projector, signing_key_file=settings.signing_key_file)


def _store_text(database: Database) -> str:
    if database.kind == "sqlite":
        return f"embedded SQLite at {database.sqlite_path}"
    schema = f", schema {database.pg_schema}" if database.pg_schema else ""
    return f"PostgreSQL {redact_url(database.url)}{schema}"
