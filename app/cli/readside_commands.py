"""`ainfera project`, `ainfera verify` and `ainfera rebuild NAME`: the read side's commands.

Like every `ainfera` command, a failure is one line on stderr and a non-zero exit; `--json`
prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from adapters.database import Database
from adapters.store import EventStore
from app.bootstrap import open_store
from app.jobs.checkpointer import checkpoint_opener, checkpointing
from app.jobs.projector import catch_up_once, run_forever
from app.logs import configure_logging
from app.services.audit import rebuild, verify
from app.services.counter_audit import verify_counters
from app.services.repair import sweep_abandoned
from app.settings import Settings
from projections.registry import UnknownProjectionError, names


@contextmanager
def _store(settings: Settings) -> Iterator[tuple[Database, EventStore]]:
    with open_store(settings) as opened:
        yield opened.database, opened.store


def _fail(args: argparse.Namespace, message: str, extra: dict[str, Any] | None = None) -> int:
    if args.json:
        print(json.dumps({"error": message, **(extra or {})}))
    print(f"ainfera: error: {message}", file=sys.stderr)
    return 1


def cmd_project(args: argparse.Namespace, settings: Settings) -> int:
    unknown = [n for n in args.only or [] if n not in names()]
    if unknown:
        return _fail(args, f"no projection {unknown[0]!r}; known: {', '.join(names())}")
    if not args.once:
        configure_logging(settings.log_format)
    with _store(settings) as (database, store), \
            checkpointing(settings, database, args.only, once=args.once):
        grace = timedelta(seconds=settings.abandon_after_s)
        ttl = timedelta(seconds=settings.heartbeat_ttl_s)
        if args.once:
            states = catch_up_once(database, store, args.only, args.batch_size)
            sweep_abandoned(database, store, grace, ttl)
        else:
            states = run_forever(database, store, args.only, args.batch_size,
                                 args.poll_interval,
                                 upkeep=lambda: sweep_abandoned(database, store, grace, ttl),
                                 environ=settings.environ)
    if args.json:
        print(json.dumps({"projections": states}))
    else:
        for s in states:
            print(f"{s['projection']}: position {s['position']}, lag {s['lag']}, "
                  f"applied {s['applied']}")
    return 0


def cmd_verify(args: argparse.Namespace, settings: Settings) -> int:
    with _store(settings) as (database, store):
        report = verify(database, store, catch_up=not args.no_catch_up,
                        open_checkpoint=checkpoint_opener(settings))
        if settings.redis_url:
            report.add("counters", verify_counters(database, settings.redis_url,
                                                   settings.redis_prefix))
    if not report.ok:
        if not args.json:
            # The findings are the command's answer (stdout); the failure is one line.
            print(report.as_text())
        return _fail(args, f"verify failed: {report.summary()}", report.as_dict())
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(f"verified {len(report.positions)} projections against {report.ledger_end} "
              f"ledger events: no differences")
    return 0


def cmd_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    try:
        with _store(settings) as (database, store):
            result = rebuild(database, store, args.name)
    except UnknownProjectionError as exc:
        return _fail(args, str(exc))
    if args.json:
        print(json.dumps(result))
    else:
        print(f"rebuilt {result['projection']}: {result['applied']} events applied, "
              f"now at {result['position']}")
    return 0


def add_projection_commands(sub: Any, parser_class: type[argparse.ArgumentParser]) -> None:
    """Adds `project`, `verify` and `rebuild` to the `ainfera` parser's subcommands."""

    def command(name: str, text: str, handler: Callable[..., int]) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(name, help=text)
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.set_defaults(handler=handler)
        return parser

    project = command("project", "run the projection workers (until SIGTERM)", cmd_project)
    project.add_argument("--only", action="append", metavar="NAME",
                         help=f"run only this projection (repeatable): {', '.join(names())}")
    project.add_argument("--once", action="store_true",
                         help="apply everything recorded so far, then exit")
    project.add_argument("--batch-size", type=int, default=500,
                         help="events applied per transaction (default: 500)")
    project.add_argument("--poll-interval", type=float, default=0.25,
                         help="seconds between polls when idle; NOTIFY wakes it earlier on "
                              "PostgreSQL (default: 0.25)")

    check = command("verify", "replay the ledger into scratch tables and diff the read side",
                    cmd_verify)
    check.add_argument("--no-catch-up", action="store_true",
                       help="compare the live tables where they are, without catching them up "
                            "first (default: catch up)")

    redo = command("rebuild", "rebuild one projection from zero while gateways run",
                   cmd_rebuild)
    redo.add_argument("name", help="the projection: " + ", ".join(names()))
