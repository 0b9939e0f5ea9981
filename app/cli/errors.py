"""Every failure of an `ainfera` command as one line naming what to fix: the store, Redis, the
config file, a file on disk, or the command's own input. Never a traceback (set
`AINFERA_DEBUG=1` to get one for an error this module does not know).

Exit codes: 1 when the command failed, 2 when it was used wrongly (argparse's convention).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from pathlib import Path

import psycopg
import redis
from eventsourcing.persistence import PersistenceError

from adapters.budget import BudgetError
from adapters.database import DatabaseUrlError
from adapters.migrations import MigrationError
from adapters.signer import SigningKeyError
from adapters.store import StoreError
from app.logs import redact_url
from app.services import router_settings, tenancy
from app.services.read_side import ProjectionBehindError
from app.settings import SettingsError
from domain.catalog import CatalogError
from domain.checkpoint import CheckpointError
from domain.money import InvalidAmountError
from domain.router_settings import RouterSettingsError
from domain.tenancy import TenancyError
from projections.registry import UnknownProjectionError

FAILED = 1
USAGE = 2


class CommandError(Exception):
    """A command failed for a reason the user can act on."""


class UsageError(CommandError):
    """The command was called wrongly (a missing or conflicting flag): exit 2."""


# Errors whose own message already says what went wrong and what to change.
_SELF_EXPLAINED = (
    CommandError, DatabaseUrlError, SettingsError, TenancyError, tenancy.TenancyServiceError,
    InvalidAmountError, CatalogError, SigningKeyError, UnknownProjectionError, CheckpointError,
    ProjectionBehindError, RouterSettingsError, router_settings.RouterSettingsServiceError,
)
_STORE = (StoreError, MigrationError, psycopg.Error, sqlite3.Error, PersistenceError)


def describe(exc: BaseException, environ: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(one line, exit code) for a failure, or raises it again when it is not one we know and
    AINFERA_DEBUG is set."""
    env = os.environ if environ is None else environ
    exc = _innermost(exc)
    if isinstance(exc, UsageError):
        return _first_line(exc), USAGE
    if isinstance(exc, _SELF_EXPLAINED):
        return _first_line(exc), FAILED
    if isinstance(exc, _STORE):
        url = env.get("AINFERA_DATABASE_URL") or "sqlite:///var/ainfera.db (the default)"
        text = _first_line(exc)
        if isinstance(exc, psycopg.Error | sqlite3.Error | PersistenceError):
            text = f"the store failed: {text}"
        return f"{text} (check AINFERA_DATABASE_URL={redact_url(url)})", FAILED
    if isinstance(exc, redis.RedisError | BudgetError):
        url = env.get("AINFERA_REDIS_URL", "")
        return (f"Redis: {_first_line(exc)} (check AINFERA_REDIS_URL={redact_url(url)})",
                FAILED)
    if isinstance(exc, OSError):
        return _os_error(exc, env), FAILED
    if env.get("AINFERA_DEBUG") == "1":
        raise exc
    return (f"unexpected {type(exc).__name__}: {_first_line(exc)} (run again with "
            "AINFERA_DEBUG=1 for the traceback)", FAILED)


def _os_error(exc: OSError, env: Mapping[str, str]) -> str:
    what = exc.strerror or _first_line(exc)
    if exc.filename is None:
        return what
    name = Path(os.fsdecode(exc.filename)).absolute()
    hint = ""
    key_file = Path(env.get("AINFERA_SIGNING_KEY_FILE") or "var/signing.key").absolute()
    database_url = env.get("AINFERA_DATABASE_URL") or "sqlite:///var/ainfera.db"
    database = (Path(database_url.removeprefix("sqlite:///")).absolute()
                if database_url.startswith("sqlite:///") else None)
    if _near(name, key_file):
        hint = " (check AINFERA_SIGNING_KEY_FILE: its directory must be writable)"
    elif database is not None and _near(name, database):
        hint = " (check AINFERA_DATABASE_URL: its directory must be writable)"
    return f"{what}: {exc.filename}{hint}"


def _near(failed: Path, target: Path) -> bool:
    """Whether a failure on `failed` concerns `target`: the file itself, a file beside it
    (a temporary, a journal) or one of its parent directories."""
    return failed == target or failed.parent == target.parent or failed in target.parents


def _innermost(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (the server's start runs in a task group,
    which wraps a config mistake in a group of one)."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].strip() if text else type(exc).__name__
