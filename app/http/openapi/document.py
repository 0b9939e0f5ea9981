"""The OpenAPI 3.1 document at `/schema/openapi.json`, and a reference page at `/schema` that a
browser renders with nothing fetched from elsewhere (no CDN, no script).

Litestar generates the skeleton (every route, its path and query parameters); this module lays
our maintained description over it: request and response schemas from the structs in
`wire_schemas` and `read_schemas`, `model` with `ainfera-inference` first and the catalog's
slugs as examples, the response headers of inference calls, and every error status with the
body shape of the caller's protocol (OpenAI's under /v1/chat/, Anthropic's everywhere else).
A route added later without an entry here still appears, with its errors in our shapes.
"""

from __future__ import annotations

import copy
import html
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
import orjson
from litestar import Request
from litestar.enums import MediaType, OpenAPIMediaType
from litestar.openapi.plugins import OpenAPIRenderPlugin

from app.http.openapi import read_schemas as rs
from app.http.openapi import wire_schemas as ws
from domain.routing import ROUTER

REF = "#/components/schemas/{name}"
ERROR_TEXT = {
    400: "The request is malformed (the message names the field); nothing was recorded, "
         "or, for `not_translatable`, a failed inference was.",
    401: "Missing, unknown or revoked API key.",
    404: "Not found: an unknown model (nothing recorded), or an inference or agent of "
         "another tenant (ids leak nothing).",
    409: "The Idempotency-Key was used with another body.",
    422: "No model clears the quality floor (`rejected_floor`, recorded).",
    429: "Over the agent's daily cap (`budget_exceeded`, recorded, `x-should-retry: false`) "
         "or the upstream's rate limit.",
    500: "Internal error; the request id identifies it in the gateway's log.",
    502: "Every upstream attempt failed (the message lists each), or no provider is "
         "configured (`provider_not_configured`, `x-should-retry: false`).",
    503: "The store, the spend counters or the read models are unavailable or behind; "
         "retry after `retry-after`.",
    529: "The upstream was overloaded.",
}
INFERENCE_ERRORS = (400, 401, 404, 409, 422, 429, 500, 502, 503, 529)
READ_ERRORS = (401, 404, 500, 503)
INFERENCE_HEADERS = {
    "x-ainfera-inference-id": "The public id (`msg_...`, `chatcmpl-...`), = the body's `id`.",
    "x-ainfera-agent-id": "The agent the key acts as.",
    "x-ainfera-audit-url": "`/v1/inferences/{id}`: the call's events.",
    "x-ainfera-router": "`ainfera-inference` (routed) or `direct` (pinned).",
    "x-ainfera-stream-mode": "`native`: streams are relayed as they arrive.",
    "request-id": "This request's id (also `x-request-id`).",
}
STREAM_TEXT = ("With `\"stream\": true`: server-sent events exactly as the vendor's SDK reads "
               "them (Anthropic: `event:` lines, message_start ... message_stop; OpenAI: "
               "data-only `chat.completion.chunk` frames, then `data: [DONE]`).")


@dataclass(frozen=True)
class Op:
    summary: str
    tag: str
    ok: dict[int, tuple[str, Any]]  # status -> (media type, struct or a list of structs)
    errors: Sequence[int] = READ_ERRORS
    request: Any = None
    auth: bool = True
    description: str = ""
    headers: dict[str, str] = field(default_factory=dict)


JSON = "application/json"
OPERATIONS: dict[tuple[str, str], Op] = {
    ("/v1/messages", "post"): Op(
        "Create a message (Anthropic Messages API)", "Inference",
        {200: (JSON, ws.MessageResponse)}, INFERENCE_ERRORS, ws.MessagesRequest,
        description="Routed (`ainfera-inference`) or pinned (a catalog slug); recorded on the "
                    "ledger before any byte goes upstream. " + STREAM_TEXT,
        headers=INFERENCE_HEADERS),
    ("/v1/chat/completions", "post"): Op(
        "Create a chat completion (OpenAI Chat Completions API)", "Inference",
        {200: (JSON, ws.ChatCompletion)}, INFERENCE_ERRORS, ws.ChatCompletionRequest,
        description="Routed (`ainfera-inference`) or pinned (a catalog slug); recorded on the "
                    "ledger before any byte goes upstream. " + STREAM_TEXT,
        headers=INFERENCE_HEADERS),
    ("/v1/models", "get"): Op(
        "Models a key may call: the router first, then the pinnable slugs", "Inference",
        {200: (JSON, [rs.AnthropicModelList, rs.OpenAIModelList])}, (401, 500)),
    ("/v1/inferences/{inference_id}", "get"): Op(
        "An inference's recorded events", "Audit", {200: (JSON, rs.InferenceEvents)}),
    ("/v1/inferences/{inference_id}/decision", "get"): Op(
        "An inference's routing decision: candidates, policy, the model chosen", "Audit",
        {200: (JSON, rs.Decision)}),
    ("/v1/inferences/{inference_id}/receipt", "get"): Op(
        "An inference's receipt: its events with leaf, chain and inclusion proofs under a "
        "signed checkpoint", "Ledger",
        {200: (JSON, [rs.Receipt, rs.TlogProofs]), 202: (JSON, rs.ReceiptPending)},
        (400, *READ_ERRORS)),
    ("/v1/ledger/checkpoint", "get"): Op(
        "The latest signed checkpoint (C2SP signed note)", "Ledger",
        {200: ("text/plain", None)}, (404, 500, 503), auth=False),
    ("/v1/ledger/consistency", "get"): Op(
        "RFC 9162 consistency proof between two signed tree sizes", "Ledger",
        {200: (JSON, rs.ConsistencyProof)}, (400, 500, 503), auth=False),
    ("/v1/ledger/public-key", "get"): Op(
        "The log's verifier key", "Ledger", {200: (JSON, rs.PublicKey)}, (500, 503),
        auth=False),
    ("/v1/usage/daily", "get"): Op(
        "Calls and spend per UTC day", "Dashboard", {200: (JSON, rs.UsageDaily)},
        (400, *READ_ERRORS)),
    ("/v1/caps/rollup", "get"): Op(
        "Caps, spend today, latency and breaches of the tenant", "Dashboard",
        {200: (JSON, rs.CapsRollup)}, (400, *READ_ERRORS)),
    ("/v1/agents/{agent_id}/metrics", "get"): Op(
        "An agent's last 24 hours (by id or name)", "Dashboard",
        {200: (JSON, rs.AgentMetrics)}, (400, *READ_ERRORS)),
    ("/healthz", "get"): Op("The process is up", "Operations", {200: (JSON, rs.Health)}, (),
                            auth=False),
    ("/readyz", "get"): Op("The store (and Redis, when configured) answer", "Operations",
                           {200: (JSON, rs.Readiness), 503: (JSON, rs.Readiness)}, (),
                           auth=False),
}


def _types() -> list[Any]:
    found: list[Any] = [ws.AnthropicError, ws.OpenAIError]
    for op in OPERATIONS.values():
        if op.request is not None:
            found.append(op.request)
        for _media, shape in op.ok.values():
            if isinstance(shape, list):
                found.extend(shape)
            elif shape is not None:
                found.append(shape)
    return list(dict.fromkeys(found))


def _ref(struct: Any) -> dict[str, str]:
    return {"$ref": REF.format(name=struct.__name__)}


def _error(path: str, status: int) -> dict[str, Any]:
    shape = ws.OpenAIError if path.startswith("/v1/chat/") else ws.AnthropicError
    return {"description": ERROR_TEXT.get(status, "Error"),
            "content": {JSON: {"schema": _ref(shape)}}}


def _responses(path: str, op: Op) -> dict[str, Any]:
    responses: dict[str, Any] = {}
    for status, (media, shape) in op.ok.items():
        content: dict[str, Any]
        if shape is None:
            content = {media: {"schema": {"type": "string"}}}
        elif isinstance(shape, list):
            content = {media: {"schema": {"oneOf": [_ref(s) for s in shape]}}}
        else:
            content = {media: {"schema": _ref(shape)}}
        if op.request is not None:
            content["text/event-stream"] = {"schema": {"type": "string",
                                                       "description": STREAM_TEXT}}
        entry: dict[str, Any] = {"description": (shape.__doc__ or "OK").strip().splitlines()[0]
                                 if shape is not None and not isinstance(shape, list) else "OK",
                                 "content": content}
        if op.headers and status == 200:
            entry["headers"] = {name: {"description": text, "schema": {"type": "string"}}
                                for name, text in op.headers.items()}
        responses[str(status)] = entry
    for status in op.errors:
        responses[str(status)] = _error(path, status)
    return responses


def build_document(generated: dict[str, Any], models: Sequence[str]) -> dict[str, Any]:
    """Litestar's generated document with our description laid over it; `models` are the
    catalog's slugs, documented as examples of `model` after the router's name."""
    doc = copy.deepcopy(generated)
    _, schemas = msgspec.json.schema_components(_types(), ref_template=REF)
    for request in (ws.MessagesRequest, ws.ChatCompletionRequest):
        model = schemas[request.__name__]["properties"]["model"]
        model["examples"] = [ROUTER, *models]
        model["description"] += " Models of this gateway: " + ", ".join(
            f"`{m}`" for m in [ROUTER, *models]) + "."
    components = doc.setdefault("components", {})
    components.setdefault("schemas", {}).update(schemas)
    components["securitySchemes"] = {
        "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
        "bearer": {"type": "http", "scheme": "bearer"},
    }
    paths: dict[str, Any] = doc.setdefault("paths", {})
    for (path, method), op in OPERATIONS.items():
        operation = paths.setdefault(path, {}).setdefault(method, {})
        operation["summary"] = op.summary
        operation["tags"] = [op.tag]
        if op.description:
            operation["description"] = op.description
        operation["responses"] = _responses(path, op)
        operation["security"] = [{"apiKey": []}, {"bearer": []}] if op.auth else []
        if op.request is not None:
            operation["requestBody"] = {"required": True, "content": {
                JSON: {"schema": _ref(op.request)}}}
    for path, item in paths.items():
        for method, operation in item.items():
            if (path, method) in OPERATIONS or not isinstance(operation, dict):
                continue
            # Routes described by nobody here: at least their errors take our shapes.
            for status in list(operation.get("responses", {})):
                if status.isdigit() and int(status) >= 400:
                    operation["responses"][status] = _error(path, int(status))
    doc["info"]["description"] = (
        "LLM inference gateway: the Anthropic Messages and OpenAI Chat Completions APIs, every "
        f"call recorded on a verifiable ledger. Send `model: \"{ROUTER}\"` to be routed, or a "
        "catalog slug to pin a model. Authenticate with `x-api-key: KEY` or `Authorization: "
        "Bearer KEY`. Money is a decimal string in US dollars; times are UTC (`Z`).")
    return doc


def _catalog_slugs(request: Request[Any, Any, Any]) -> list[str]:
    runtime = getattr(request.app.state, "runtime", None)
    return [m.slug for m in runtime.catalog.models] if runtime is not None else []


class OpenAPIJson(OpenAPIRenderPlugin):
    """`/schema/openapi.json`: the enriched document (built once per app)."""

    def __init__(self) -> None:
        super().__init__(path="/openapi.json", media_type=OpenAPIMediaType.OPENAPI_JSON)
        self._cached: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._cached is None:
            document = build_document(openapi_schema, _catalog_slugs(request))
            self._cached = orjson.dumps(document)
        return self._cached


class OpenAPIReference(OpenAPIRenderPlugin):
    """`/schema`: every operation with its summary, request schema and responses, rendered on
    the server as plain HTML (readable offline; no script, no stylesheet from elsewhere)."""

    def __init__(self) -> None:
        super().__init__(path=["/", "/reference"], media_type=MediaType.HTML)
        self._cached: bytes | None = None

    def render(self, request: Request[Any, Any, Any], openapi_schema: dict[str, Any]) -> bytes:
        if self._cached is None:
            document = build_document(openapi_schema, _catalog_slugs(request))
            self._cached = reference_html(document).encode()
        return self._cached


def reference_html(doc: dict[str, Any]) -> str:
    e = html.escape
    rows: list[str] = []
    for path, item in sorted(doc.get("paths", {}).items()):
        for method, op in item.items():
            if not isinstance(op, dict):
                continue
            body = op.get("requestBody", {}).get("content", {}).get(JSON, {}).get("schema", {})
            request_name = body.get("$ref", "").rsplit("/", 1)[-1]
            statuses = ", ".join(sorted(op.get("responses", {})))
            rows.append(
                f"<tr><td><code>{e(method.upper())} {e(path)}</code></td>"
                f"<td>{e(op.get('summary', ''))}"
                + (f"<br><small>{e(op['description'])}</small>" if op.get("description")
                   else "")
                + f"</td><td>{e(request_name) or '-'}</td><td>{e(statuses)}</td></tr>")
    info = doc.get("info", {})
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{e(info.get('title', 'API'))} reference</title>"
        "<style>body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:72em}"
        "table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;"
        "padding:.4em;text-align:left;vertical-align:top}code{white-space:nowrap}</style>"
        f"</head><body><h1>{e(info.get('title', 'API'))} {e(info.get('version', ''))}</h1>"
        f"<p>{e(info.get('description', ''))}</p>"
        "<p>Machine-readable: <a href=\"/schema/openapi.json\">/schema/openapi.json</a> "
        "(OpenAPI 3.1; request and response schemas under <code>components.schemas</code>)."
        "</p><table><tr><th>operation</th><th>what</th><th>request body</th>"
        f"<th>responses</th></tr>{''.join(rows)}</table></body></html>")
