"""The `ainfera` command line: serve, migrate, and the tenancy admin commands.

Every failure is one line on stderr and a non-zero exit, never a traceback. With `--json` an
admin command prints exactly one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from adapters.database import Database, DatabaseUrlError
from adapters.migrations import MigrationError, migrate
from adapters.store import EventStore, StoreError
from app.bootstrap import open_store
from app.cli.readside_commands import add_projection_commands
from app.cli.receipt_commands import add_receipt_commands
from app.jobs.projector_process import ProjectorProcess, project_command
from app.services import tenancy
from app.settings import PROJECTOR_MODES, Settings, SettingsError
from domain.money import InvalidAmountError
from domain.tenancy import TenancyError, parse_cap


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


class CommandError(Exception):
    """A command failed for a reason the user can act on."""


def _print(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text)


def _with_store(settings: Settings, work: Callable[[EventStore], dict[str, Any]]) -> dict[str, Any]:
    with open_store(settings) as opened:
        return work(opened.store)


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from app.factory import create_app
    from app.http.server import guarded_protocol

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # httpx logs every upstream request at INFO: a log line (and a listener thread's work) per
    # call that says nothing the gateway's own records do not.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    mode = args.projector or settings.projector
    settings = settings.with_(host=args.host or settings.host, port=args.port or settings.port,
                              run_projections=mode == "inprocess")
    child = None
    if mode == "process":
        # Migrations first, so the child and the gateway never race to create the schema.
        with open_store(settings):
            pass
        # SQLite has no NOTIFY to wake the child, so it polls often (a cheap indexed read).
        poll = 0.25 if settings.database_url.startswith("postgres") else 0.05
        child = ProjectorProcess(project_command(poll), settings.environ)
        child.start()
    try:
        uvicorn.run(
            create_app(settings), host=settings.host, port=settings.port, loop="uvloop",
            http=guarded_protocol(settings.header_timeout_s, settings.max_connections),
            timeout_keep_alive=max(1, round(settings.keepalive_timeout_s)),
            lifespan="on", log_level="info", access_log=False, timeout_graceful_shutdown=10,
        )
    finally:
        if child is not None:
            child.stop()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = migrate(Database.from_url(settings.database_url))
    _print(args, {"applied": applied},
           "applied: " + ", ".join(applied) if applied else "already up to date")
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {"tenant_id": str(tenancy.create_tenant(s, args.name))})
    _print(args, out, out["tenant_id"])
    return 0


def cmd_agent_create(args: argparse.Namespace, settings: Settings) -> int:
    cap = parse_cap(args.daily_cap_usd)
    out = _with_store(settings, lambda s: {
        "agent_id": str(tenancy.create_agent(s, args.tenant, args.name, cap))})
    _print(args, out, out["agent_id"])
    return 0


def cmd_agent_set_cap(args: argparse.Namespace, settings: Settings) -> int:
    cap = None if args.no_cap else parse_cap(args.daily_cap_usd)
    if cap is None and not args.no_cap:
        raise CommandError("give --daily-cap-usd AMOUNT, or --no-cap to lift the cap")

    def work(store: EventStore) -> dict[str, Any]:
        agent_id = tenancy.set_agent_cap(store, args.tenant, args.agent, cap)
        return {"agent_id": str(agent_id), "daily_cap_usd": None if cap is None else str(cap)}

    out = _with_store(settings, work)
    _print(args, out, f"agent {out['agent_id']}: daily cap "
           f"{'none' if cap is None else '$' + str(cap)} (gateways apply it within 2 s)")
    return 0


def cmd_key_create(args: argparse.Namespace, settings: Settings) -> int:
    def work(store: EventStore) -> dict[str, Any]:
        issued = tenancy.create_key(store, args.tenant, args.agent, admin=args.admin)
        return {"key": issued.key, "key_id": str(issued.key_id), "scope": issued.scope,
                "tenant_id": str(issued.tenant_id),
                "agent_id": None if issued.agent_id is None else str(issued.agent_id)}

    out = _with_store(settings, work)
    what = "tenant-admin key" if args.admin else "key"
    _print(args, out, f"{out['key']}\n({what} id {out['key_id']}; the key is shown only once)")
    return 0


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {
        "key_id": str(tenancy.revoke_key(s, args.key_or_id)), "revoked": True})
    _print(args, out, f"revoked {out['key_id']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ainfera", description="Ainfera Ledger gateway and ledger tools")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print one JSON object")

    serve = sub.add_parser("serve", help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--projector", choices=PROJECTOR_MODES,
                       help="where the projector and checkpointer run: a supervised child "
                            "process (default), in the gateway process, or off (a separate "
                            "`ainfera project`); env AINFERA_PROJECTOR")
    serve.set_defaults(handler=cmd_serve)

    mig = sub.add_parser("migrate", help="apply database migrations")
    json_flag(mig)
    mig.set_defaults(handler=cmd_migrate)

    tenant = sub.add_parser("tenant", help="tenants").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    tc = tenant.add_parser("create", help="create a tenant (and its default agent)")
    tc.add_argument("name")
    json_flag(tc)
    tc.set_defaults(handler=cmd_tenant_create)

    agent = sub.add_parser("agent", help="agents").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    ac = agent.add_parser("create", help="register an agent")
    ac.add_argument("--tenant", required=True, help="tenant name or id")
    ac.add_argument("--name", required=True)
    ac.add_argument("--daily-cap-usd", help="daily spend cap in USD, e.g. 5.00")
    json_flag(ac)
    ac.set_defaults(handler=cmd_agent_create)
    sc = agent.add_parser("set-cap", help="change an agent's daily spend cap (a ledger event)")
    sc.add_argument("--tenant", required=True, help="tenant name or id")
    sc.add_argument("--agent", required=True, help="agent name or id")
    amount = sc.add_mutually_exclusive_group(required=True)
    amount.add_argument("--daily-cap-usd", help="the new cap in USD, e.g. 10.00")
    amount.add_argument("--no-cap", action="store_true", help="lift the cap")
    json_flag(sc)
    sc.set_defaults(handler=cmd_agent_set_cap)

    key = sub.add_parser("key", help="API keys").add_subparsers(
        dest="action", required=True, parser_class=_Parser)
    kc = key.add_parser("create", help="issue an API key (shown once)")
    kc.add_argument("--tenant", required=True, help="tenant name or id")
    bound = kc.add_mutually_exclusive_group()
    bound.add_argument("--agent", help="agent name or id (default: the tenant's default agent)")
    bound.add_argument("--admin", action="store_true",
                    help="a tenant-admin key: manages the tenant's agents, caps and keys "
                         "(admin API, console); cannot make inference calls")
    json_flag(kc)
    kc.set_defaults(handler=cmd_key_create)
    kr = key.add_parser("revoke", help="revoke a key, given the key or its id")
    kr.add_argument("key_or_id")
    json_flag(kr)
    kr.set_defaults(handler=cmd_key_revoke)
    add_receipt_commands(sub, _Parser)
    add_projection_commands(sub, _Parser)
    return parser


_USER_ERRORS = (
    CommandError, DatabaseUrlError, MigrationError, StoreError, SettingsError, TenancyError,
    tenancy.TenancyServiceError, InvalidAmountError,
)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        code: int = args.handler(args, settings)
    except _USER_ERRORS as exc:
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if getattr(args, "json", False):
            print(json.dumps({"error": message}))
        print(f"ainfera: error: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
