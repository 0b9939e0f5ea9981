"""`ainfera serve` (the gateway) and `ainfera upstream-sim` (a local stand-in for the vendors).

`serve` checks what it will need before the server starts: the config file parses, the store
opens and migrates (a missing PostgreSQL `?schema=` is created), the signing key loads or can
be created, the Redis URL is well formed. Any of those failing is one line and exit 1, instead
of a stack of task-group tracebacks from inside the server's start.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any

from adapters.budget_redis import RedisBudgetCounter
from app.bootstrap import open_store
from app.cli.errors import CommandError
from app.jobs.checkpointer import load_signer
from app.jobs.projector_process import ProjectorProcess, project_command
from app.logs import configure_logging
from app.settings import DEFAULT_HOST, DEFAULT_PORT, PROJECTOR_MODES, Settings
from domain.catalog import default_catalog, load_catalog


def preflight(settings: Settings) -> None:
    """Everything the gateway's start would trip over, checked in the foreground, cheapest
    first (the signing key last: it is created when missing, so only once the rest is fine)."""
    if settings.config_path:
        load_catalog(settings.config_path)
    else:
        default_catalog()
    if settings.redis_url:
        async def check_url(url: str) -> None:
            counter = RedisBudgetCounter.from_url(url, prefix=settings.redis_prefix)
            await counter.aclose()

        try:
            asyncio.run(check_url(settings.redis_url))
        except ValueError as exc:
            raise CommandError(f"AINFERA_REDIS_URL is not a Redis URL: {exc}") from None
    with open_store(settings):
        pass
    load_signer(settings)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.factory import create_app
    from app.http.server import guarded_protocol

    mode = args.projector or settings.projector
    settings = settings.with_(host=args.host or settings.host, port=args.port or settings.port,
                              projector=mode, run_projections=mode == "inprocess")
    configure_logging(settings.log_format)
    # Migrations happen here too, so a projector child and the gateway never race to create
    # the schema.
    preflight(settings)
    child = None
    if mode == "process":
        # SQLite has no NOTIFY to wake the child, so it polls often (a cheap indexed read).
        poll = 0.25 if settings.database_url.startswith("postgres") else 0.05
        child = ProjectorProcess(project_command(poll), settings.environ)
        child.start()
    try:
        # log_config=None: uvicorn's own lines go through our handler, in our format.
        uvicorn.run(
            create_app(settings, settle_heap=True), host=settings.host, port=settings.port,
            loop="uvloop",
            http=guarded_protocol(settings.header_timeout_s, settings.max_connections),
            timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
            lifespan="on", log_level="info", access_log=False, timeout_graceful_shutdown=10,
            log_config=None,
        )
    except SystemExit as exit_:
        # uvicorn exits 3 when the app's start failed; its log says why, in one line.
        if exit_.code not in (0, None):
            raise CommandError("the gateway could not start: see the log line above") from None
    finally:
        if child is not None:
            child.stop()
    return 0


def cmd_upstream_sim(args: argparse.Namespace, settings: Settings) -> int:
    from upstream_sim import simulated_reply, start_simulator

    configure_logging(settings.log_format)
    with start_simulator(host=args.host, port=args.port, default=simulated_reply) as sim:
        print(f"upstream simulator (not a real model) on {sim.base_url}: Anthropic "
              f"{sim.base_url}/v1/messages, OpenAI {sim.base_url}/v1/chat/completions, "
              f"Gemini {sim.base_url}/v1beta/models/M:generateContent; Ctrl-C stops it",
              flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
    return 0


def add_serve_commands(sub: Any) -> None:
    serve = sub.add_parser(
        "serve", help="run the gateway (migrates the store first)",
        description="Run the gateway: both inference surfaces, the dashboard and the ledger "
                    "endpoints, with the projections and checkpointer in this process unless "
                    "AINFERA_NO_INPROCESS_PROJECTIONS=1. Settings come from the environment "
                    "(see `ainfera --help`).")
    serve.add_argument("--host", help=f"address to listen on (default: AINFERA_HOST or "
                                      f"{DEFAULT_HOST})")
    serve.add_argument("--port", type=int, help=f"port to listen on (default: AINFERA_PORT or "
                                                f"{DEFAULT_PORT})")
    serve.add_argument("--projector", choices=PROJECTOR_MODES,
                       help="where the projector and checkpointer run: a supervised child "
                            "process, in the gateway process, or off (a separate `ainfera "
                            "project`) (default: AINFERA_PROJECTOR or process)")
    serve.set_defaults(handler=cmd_serve)

    sim = sub.add_parser(
        "upstream-sim", help="run a local SIMULATOR of the vendor APIs (no real model)",
        description="A loopback simulator of the Anthropic, OpenAI and Gemini wire protocols, "
                    "for trying the gateway with no vendor keys and no network (`make demo` "
                    "uses it). Replies are canned: text echoing the prompt's length, a call of "
                    "the first tool when tools are offered. It is not a model.")
    sim.add_argument("--host", default="127.0.0.1",
                     help="address to listen on (default: 127.0.0.1)")
    sim.add_argument("--port", type=int, default=8765,
                     help="port to listen on, 0 for any free one (default: 8765)")
    sim.set_defaults(handler=cmd_upstream_sim)
