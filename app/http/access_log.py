"""One log line per call (logger `ainfera.access`), written at the HTTP edge when the response
has been sent to its last byte (so a stream's total latency is the whole stream).

It is built only from what the request and response carry: the response status and `x-ainfera-*`
headers, what the handlers left in the request state (`caller` from auth, `client_request` from
the inference routes) and what the write path noted of the call (app.services.call_report).
It never reads a body, so it can log neither a prompt nor a completion, and it never sees a
key, only the caller it resolved to.

Health, readiness and metrics probes are not logged: a load balancer polls them every second.
Requests Litestar refuses before any route runs (no such endpoint, wrong method) are logged by
the error map through `log_unrouted`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from app.services.call_report import CallReport, start_report

log = logging.getLogger("ainfera.access")

QUIET_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
WATCHED = "access_logged"  # set in the request state by the middleware
REPORT = "call_report"  # what the write path noted of the call (app.services.call_report)
SURFACES = {"/v1/messages": "messages", "/v1/chat/completions": "chat.completions"}


def access_log_middleware(app: ASGIApp) -> ASGIApp:
    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] in QUIET_PATHS:
            await app(scope, receive, send)
            return
        started = time.monotonic()
        state = scope.setdefault("state", {})
        state[WATCHED] = True
        state[REPORT] = start_report()
        response: dict[str, Any] = {"status": 500, "headers": {}}
        logged = False

        def finish() -> None:
            nonlocal logged
            if not logged:
                logged = True
                log_call(scope, response["status"], response["headers"],
                         time.monotonic() - started)

        async def send_and_watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                response["status"] = message["status"]
                response["headers"] = {
                    k.decode("latin-1").lower(): v.decode("latin-1")
                    for k, v in message.get("headers", [])
                    if k.lower().startswith(b"x-ainfera-")}
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                finish()

        try:
            await app(scope, receive, send_and_watch)
        finally:
            # A client gone mid-stream, or a failure before any response: still one line.
            finish()

    return middleware


def log_call(scope: Scope, status: int, headers: dict[str, str], seconds: float | None) -> None:
    state: dict[str, Any] = scope.get("state") or {}
    fields: dict[str, Any] = {
        "request_id": state.get("request_id"),
        "method": scope.get("method"),
        "path": scope.get("path"),
        "status": status,
        "inference_id": headers.get("x-ainfera-inference-id"),
        "tenant_id": None,
        "agent_id": headers.get("x-ainfera-agent-id"),
        "surface": SURFACES.get(str(scope.get("path"))),
        "requested_model": None,
        "served_model": None,
        "router": headers.get("x-ainfera-router"),
        "outcome": None,
        "upstream_ms": None,
        "total_ms": None if seconds is None else round(seconds * 1000, 1),
        "cost_usd": None,
    }
    caller = state.get("caller")
    if caller is not None:
        fields["tenant_id"] = str(caller.tenant_id)
        agent = getattr(caller, "agent_id", None)  # None for a tenant-admin key
        fields["agent_id"] = fields["agent_id"] or (None if agent is None else str(agent))
    client_request = state.get("client_request")
    if client_request is not None:
        fields["requested_model"] = client_request.requested_model
    report: CallReport | None = state.get(REPORT)
    if report is not None and report.outcome is not None:
        fields["served_model"] = report.served_model
        fields["outcome"] = report.outcome
        if report.upstream_s is not None:
            fields["upstream_ms"] = round(report.upstream_s * 1000, 1)
        if report.cost_usd is not None:
            fields["cost_usd"] = format(report.cost_usd, "f")
    level = logging.ERROR if status >= 500 else logging.INFO
    log.log(level, "%s %s %s", scope.get("method"), scope.get("path"), status,
            extra={"fields": fields, "in_message": ("method", "path", "status")})


def log_unrouted(scope: Scope, status: int) -> None:
    """A request no route took (404 no such endpoint, 405): the middleware never saw it."""
    if not (scope.get("state") or {}).get(WATCHED) and scope.get("path") not in QUIET_PATHS:
        log_call(scope, status, {}, None)
