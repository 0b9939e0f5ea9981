"""The `ainfera` command line: serve, migrate, the tenancy admin commands and their listings,
and the router's operator settings.

Every failure is one line on stderr naming what to fix (app.cli.errors), never a traceback:
exit 1 when the command failed, 2 when it was called wrongly. With `--json` a command prints
exactly one JSON object on stdout, `{"error": ...}` when it failed.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from adapters.database import Database
from adapters.migrations import migrate
from adapters.store import EventStore
from app.bootstrap import open_store
from app.cli.demo_command import add_demo_command
from app.cli.errors import CommandError, UsageError, describe
from app.cli.readside_commands import add_projection_commands
from app.cli.receipt_commands import add_receipt_commands
from app.cli.serve_command import add_serve_commands
from app.services import listings, router_settings, tenancy
from app.settings import Settings
from domain.tenancy import parse_cap

__all__ = ["CommandError", "UsageError", "build_parser", "main"]

ENVIRONMENT = """\
environment (every command reads these; flags win where both exist):
  AINFERA_DATABASE_URL     sqlite:///PATH or postgresql://USER[:PASS]@HOST:PORT/DB[?schema=S]
                           (default sqlite:///var/ainfera.db; a missing schema is created)
  AINFERA_REDIS_URL        redis://HOST:6379/0 for counters shared by gateways
                           (default: unset, in-process counters)
  AINFERA_REDIS_PREFIX     key prefix of the counters in Redis (default ainfera:)
  AINFERA_CONFIG           TOML catalog: providers, models, router (default: built-in catalog)
  AINFERA_SIGNING_KEY_FILE Ed25519 checkpoint key, created if missing (default var/signing.key)
  AINFERA_LOG_ORIGIN       the log's origin line in checkpoints (default ainfera.local/ledger)
  AINFERA_LOG_FORMAT       text or json (default text)
  AINFERA_HOST, AINFERA_PORT  where `serve` listens (default 127.0.0.1, 8080)
  AINFERA_DEBUG=1          print the traceback of an unexpected error
  more in README.md (Settings)"""


class _Parser(argparse.ArgumentParser):
    """argparse with our error convention: one line, exit 2, and a JSON object on stdout when
    the command line asked for `--json`."""

    wants_json = False

    def error(self, message: str) -> NoReturn:
        if _Parser.wants_json:
            print(json.dumps({"error": message}))
        self.exit(2, f"{self.prog}: error: {message}\n")


def _print(args: argparse.Namespace, obj: dict[str, Any], text: str) -> None:
    print(json.dumps(obj) if args.json else text)


def _with_store(settings: Settings, work: Callable[[EventStore], dict[str, Any]]) -> dict[str, Any]:
    with open_store(settings) as opened:
        return work(opened.store)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    applied = migrate(Database.from_url(settings.database_url))
    _print(args, {"applied": applied},
           "applied: " + ", ".join(applied) if applied else "already up to date")
    return 0


def cmd_tenant_create(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {"tenant_id": str(tenancy.create_tenant(s, args.name))})
    _print(args, out, out["tenant_id"])
    return 0


def cmd_tenant_list(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {"tenants": listings.list_tenants(s)})
    _print(args, out, listings.table(out["tenants"], ("name", "tenant_id", "created_at")))
    return 0


def cmd_agent_create(args: argparse.Namespace, settings: Settings) -> int:
    cap = parse_cap(args.daily_cap_usd)
    out = _with_store(settings, lambda s: {
        "agent_id": str(tenancy.create_agent(s, args.tenant, args.name, cap))})
    _print(args, out, out["agent_id"])
    return 0


def cmd_agent_list(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {"agents": listings.list_agents(s, args.tenant)})
    _print(args, out, listings.table(out["agents"],
                                     ("name", "agent_id", "daily_cap_usd", "created_at")))
    return 0


def cmd_agent_set_cap(args: argparse.Namespace, settings: Settings) -> int:
    cap = None if args.no_cap else parse_cap(args.daily_cap_usd)
    if cap is None and not args.no_cap:
        raise UsageError("give --daily-cap-usd AMOUNT, or --no-cap to lift the cap")

    def work(store: EventStore) -> dict[str, Any]:
        agent_id = tenancy.set_agent_cap(store, args.tenant, args.agent, cap)
        return {"agent_id": str(agent_id), "daily_cap_usd": None if cap is None else str(cap)}

    out = _with_store(settings, work)
    _print(args, out, f"agent {out['agent_id']}: daily cap "
           f"{'none' if cap is None else '$' + str(cap)} (gateways apply it within 2 s)")
    return 0


def default_actor(settings: Settings) -> str:
    """Who is running the command, for the ledger: the login name and the host."""
    user = settings.environ.get("USER") or settings.environ.get("LOGNAME") or "unknown"
    return f"{user}@{socket.gethostname()}"


def cmd_router_preference_live(args: argparse.Namespace, settings: Settings) -> int:
    initial = settings.routing_preference_live

    def work(store: EventStore) -> dict[str, Any]:
        if args.state is None:
            state = router_settings.gate_state(store, initial)
        else:
            actor = args.actor if args.actor is not None else default_actor(settings)
            state = router_settings.set_preference_live(store, args.state == "on", actor)
        return {"preference_live": state.preference_live, "source": state.source,
                "set_by": state.set_by,
                "set_at": None if state.set_at is None else state.set_at.isoformat()}

    out = _with_store(settings, work)
    text = f"preference gate: {'on' if out['preference_live'] else 'off'}"
    if out["source"] == "ledger":
        text += f" (set by {out['set_by']} at {out['set_at']}"
        text += "; gateways apply it within 2 s)" if args.state is not None else ")"
    else:
        text += " (from AINFERA_ROUTING_PREFERENCE_LIVE: never set on the ledger)"
    _print(args, out, text)
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


def cmd_key_list(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {"keys": listings.list_keys(s, args.tenant)})
    _print(args, out, listings.table(
        out["keys"], ("prefix", "key_id", "scope", "agent", "created_at", "revoked",
                      "revoked_at")))
    return 0


def cmd_key_revoke(args: argparse.Namespace, settings: Settings) -> int:
    out = _with_store(settings, lambda s: {
        "key_id": str(tenancy.revoke_key(s, args.key_or_id)), "revoked": True})
    _print(args, out, f"revoked {out['key_id']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ainfera", description="Ainfera Ledger: the gateway and its ledger "
                     "tools. Run `ainfera COMMAND --help` for a command's flags.",
                     epilog=ENVIRONMENT, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="COMMAND")

    def json_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true",
                       help="print exactly one JSON object on stdout ({\"error\": ...} on "
                            "failure)")

    add_serve_commands(sub)
    add_demo_command(sub)

    mig = sub.add_parser("migrate", help="create or update the store's tables "
                         "(AINFERA_DATABASE_URL)", description="Create or update the tables "
                         "in AINFERA_DATABASE_URL (idempotent; serve also does it at start).")
    json_flag(mig)
    mig.set_defaults(handler=cmd_migrate)

    tenant = sub.add_parser("tenant", help="create and list tenants").add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    tc = tenant.add_parser("create", help="create a tenant (and its `default` agent)")
    tc.add_argument("name", help="the tenant's name, 1-128 printable characters")
    json_flag(tc)
    tc.set_defaults(handler=cmd_tenant_create)
    tl = tenant.add_parser("list", help="list every tenant (name, id, created)")
    json_flag(tl)
    tl.set_defaults(handler=cmd_tenant_list)

    agent = sub.add_parser("agent", help="register, list and cap agents").add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    ac = agent.add_parser("create", help="register an agent")
    ac.add_argument("--tenant", required=True, help="tenant name or id")
    ac.add_argument("--name", required=True, help="the agent's name, unique in its tenant")
    ac.add_argument("--daily-cap-usd", metavar="AMOUNT",
                    help="daily spend cap in USD, e.g. 5.00 (default: no cap)")
    json_flag(ac)
    ac.set_defaults(handler=cmd_agent_create)
    al = agent.add_parser("list", help="list a tenant's agents (name, id, daily cap, created)")
    al.add_argument("--tenant", required=True, help="tenant name or id")
    json_flag(al)
    al.set_defaults(handler=cmd_agent_list)
    sc = agent.add_parser("set-cap", help="change an agent's daily spend cap (a ledger event)")
    sc.add_argument("--tenant", required=True, help="tenant name or id")
    sc.add_argument("--agent", required=True, help="agent name or id")
    amount = sc.add_mutually_exclusive_group(required=True)
    amount.add_argument("--daily-cap-usd", metavar="AMOUNT",
                        help="the new cap in USD, e.g. 10.00")
    amount.add_argument("--no-cap", action="store_true", help="lift the cap")
    json_flag(sc)
    sc.set_defaults(handler=cmd_agent_set_cap)

    router = sub.add_parser("router", help="the router's operator settings").add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    gate = router.add_parser(
        "preference-live", help="whether routing_preference may move the quality floor: set "
        "it on the ledger (running gateways apply it within 2 s), or show it",
        description="With on|off, record the preference gate on the ledger (who and when); "
        "running gateways apply it within 2 s, and from then on the ledger, not "
        "AINFERA_ROUTING_PREFERENCE_LIVE, decides. Without, show the gate in force and where "
        "it comes from.")
    gate.add_argument("state", nargs="?", choices=["on", "off"],
                      help="the new state (default: show the current one)")
    gate.add_argument("--actor", help="who is making the change, for the ledger (default: "
                      "USER@host)")
    json_flag(gate)
    gate.set_defaults(handler=cmd_router_preference_live)

    key = sub.add_parser("key", help="issue, list and revoke API keys").add_subparsers(
        dest="action", required=True, parser_class=_Parser, metavar="ACTION")
    kc = key.add_parser("create", help="issue an API key (printed once, never stored)")
    kc.add_argument("--tenant", required=True, help="tenant name or id")
    bound = kc.add_mutually_exclusive_group()
    bound.add_argument("--agent", help="agent name or id (default: the tenant's `default` agent)")
    bound.add_argument("--admin", action="store_true",
                       help="a tenant-admin key: manages the tenant's agents, caps and keys "
                            "(admin API, console); cannot make inference calls")
    json_flag(kc)
    kc.set_defaults(handler=cmd_key_create)
    kl = key.add_parser("list", help="list a tenant's keys (prefix, id, agent, created, "
                        "revoked; never the key itself)")
    kl.add_argument("--tenant", required=True, help="tenant name or id")
    json_flag(kl)
    kl.set_defaults(handler=cmd_key_list)
    kr = key.add_parser("revoke", help="revoke a key, given the key or its id")
    kr.add_argument("key_or_id", help="the key (ak_...) or its key id")
    json_flag(kr)
    kr.set_defaults(handler=cmd_key_revoke)
    add_receipt_commands(sub, _Parser)
    add_projection_commands(sub, _Parser)
    for name, command in _commands(parser):
        variables = COMMAND_ENV.get(name, STORE_ENV)
        command.formatter_class = argparse.RawDescriptionHelpFormatter
        command.epilog = ("environment:\n" + "\n".join(
            f"  {var:<33} {ENV_HELP[var]}" for var in variables)) if variables else \
            "environment: none is read"
    return parser


ENV_HELP = {
    "AINFERA_DATABASE_URL": "the store (default sqlite:///var/ainfera.db)",
    "AINFERA_REDIS_URL": "shared spend counters (default: in-process)",
    "AINFERA_REDIS_PREFIX": "their key prefix (default ainfera:)",
    "AINFERA_CONFIG": "the TOML catalog (default: built-in)",
    "AINFERA_SIGNING_KEY_FILE": "checkpoint key (default var/signing.key)",
    "AINFERA_LOG_ORIGIN": "the log's origin (default ainfera.local/ledger)",
    "AINFERA_LOG_FORMAT": "text or json (default text)",
    "AINFERA_HOST, AINFERA_PORT": "where to listen (default 127.0.0.1, 8080)",
    "AINFERA_ROUTING_PREFERENCE_LIVE": "1: routing_preference moves the floor (default 0)",
    "AINFERA_BUDGET_FAIL_OPEN": "1: serve when the counters are down (default 0)",
    "AINFERA_NO_INPROCESS_PROJECTIONS": "1: a separate `project` worker runs them (default 0)",
    "AINFERA_ABANDON_AFTER_S": "open calls older than this are abandoned (default 3600)",
    "AINFERA_AUTH_CACHE_TTL_S": "how long a key check is reused (default 1)",
    "provider keys": "the variables the catalog names (api_key_env)",
}
STORE_ENV = ("AINFERA_DATABASE_URL",)
COMMAND_ENV: dict[str, tuple[str, ...]] = {
    "serve": tuple(ENV_HELP),
    "demo": (),
    "upstream-sim": ("AINFERA_LOG_FORMAT",),
    "receipt verify": (),
    "verify": ("AINFERA_DATABASE_URL", "AINFERA_REDIS_URL", "AINFERA_REDIS_PREFIX",
               "AINFERA_SIGNING_KEY_FILE"),
    "router preference-live": ("AINFERA_DATABASE_URL", "AINFERA_ROUTING_PREFERENCE_LIVE"),
    "project": ("AINFERA_DATABASE_URL", "AINFERA_SIGNING_KEY_FILE", "AINFERA_LOG_ORIGIN",
                "AINFERA_ABANDON_AFTER_S", "AINFERA_LOG_FORMAT"),
}


def _commands(parser: argparse.ArgumentParser,
              prefix: str = "") -> list[tuple[str, argparse.ArgumentParser]]:
    """Every leaf command's parser, named by its words (`key create`)."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                words = f"{prefix} {name}".strip()
                found += _commands(child, words) or [(words, child)]
    return found


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    _Parser.wants_json = "--json" in arguments
    parser = build_parser()
    args = parser.parse_args(arguments)
    try:
        settings = Settings.from_env()
        code: int = args.handler(args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # every failure becomes one line (app.cli.errors)
        message, code = describe(exc)
        if getattr(args, "json", False):
            print(json.dumps({"error": message}))
        print(f"ainfera: error: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main())
