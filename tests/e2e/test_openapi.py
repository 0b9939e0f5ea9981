"""The published OpenAPI document describes the API a client generator would be given: real
responses of a running gateway (successes and errors, on every documented endpoint) and the
requests the SDKs send validate against `/schema/openapi.json`, and its reference page loads
nothing from elsewhere."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import jsonschema
import pytest

from tests.fakes.upstream import http_error, start_fake_upstream, text, tool_call
from tests.harness.gateway import Server, World, prepare_world, serve

TOOLS = [{"name": "get_weather", "description": "Weather",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, World]]:
    tmp = tmp_path_factory.mktemp("openapi")
    url = f"sqlite:///{tmp}/gateway.db"
    world = prepare_world(url, daily_cap_usd="0.000001")  # acme's bot: every call over cap
    with start_fake_upstream() as fake:
        fake.script("up-gpt", text("Hello."))
        fake.script("up-gemini", tool_call("get_weather", {"city": "Paris"}))
        fake.script("up-claude", http_error(500))
        with serve(url, fake, tmp) as server:
            yield server, world


@pytest.fixture(scope="module")
def document(gateway: tuple[Server, World]) -> dict[str, Any]:
    server, _ = gateway
    response = httpx.get(f"{server.url}/schema/openapi.json", timeout=30)
    assert response.status_code == 200
    doc: dict[str, Any] = response.json()
    return doc


def template_of(doc: dict[str, Any], path: str) -> str:
    for template in doc["paths"]:
        pattern = "^" + re.sub(r"\{[^}]+\}", "[^/]+", template) + "$"
        if re.match(pattern, path):
            return template
    raise AssertionError(f"{path} is not in the document")


def check(doc: dict[str, Any], response: httpx.Response) -> None:
    """The response's body validates against what the document says for its path, method,
    status and media type."""
    request = response.request
    template = template_of(doc, request.url.path)
    operation = doc["paths"][template][request.method.lower()]
    documented = operation["responses"]
    status = str(response.status_code)
    assert status in documented, (template, status, sorted(documented))
    media = response.headers["content-type"].split(";")[0]
    content = documented[status]["content"]
    assert media in content, (template, status, media, list(content))
    if media == "application/json":
        schema = {**content[media]["schema"], "components": doc["components"]}
        jsonschema.validate(response.json(), schema,
                            cls=jsonschema.Draft202012Validator)


def check_request(doc: dict[str, Any], path: str, body: dict[str, Any]) -> None:
    schema = doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    jsonschema.validate(body, {**schema, "components": doc["components"]},
                        cls=jsonschema.Draft202012Validator)


def test_the_document_says_what_a_generator_needs(document: dict[str, Any]) -> None:
    assert document["openapi"].startswith("3.1")
    schemas = document["components"]["schemas"]
    for surface in ("MessagesRequest", "ChatCompletionRequest"):
        model = schemas[surface]["properties"]["model"]
        assert model["examples"][0] == "ainfera-inference"
        assert {"fake-gpt", "fake-claude", "fake-gemini", "fake-weak"} <= set(model["examples"])
        assert "routing_hint" in schemas[surface]["properties"]
    hint = schemas["RoutingHint"]["properties"]
    assert set(hint) == {"min_quality", "routing_preference"}
    assert "balanced" in str(hint["routing_preference"])
    for path, shape in (("/v1/messages", "AnthropicError"),
                        ("/v1/chat/completions", "OpenAIError")):
        responses = document["paths"][path]["post"]["responses"]
        assert {"400", "401", "404", "422", "429", "502", "503", "529"} <= set(responses)
        for status, response in responses.items():
            if int(status) >= 400:
                ref = response["content"]["application/json"]["schema"]["$ref"]
                assert ref.endswith(shape), (path, status)
        assert "text/event-stream" in responses["200"]["content"]
        assert "x-ainfera-inference-id" in responses["200"]["headers"]
    for path in ("/v1/usage/daily", "/v1/caps/rollup", "/v1/agents/{agent_id}/metrics",
                 "/v1/inferences/{inference_id}/receipt", "/v1/ledger/consistency"):
        ok = document["paths"][path]["get"]["responses"]["200"]["content"]
        assert ok["application/json"]["schema"], path
    assert "apiKey" in document["components"]["securitySchemes"]


def test_real_responses_validate_against_the_document(
        gateway: tuple[Server, World], document: dict[str, Any]) -> None:
    server, world = gateway
    ok_key, capped_key = world.other_key, world.key
    base = server.url

    def post(path: str, body: dict[str, Any], key: str | None = ok_key,
             valid: bool = True) -> httpx.Response:
        if valid:  # what we send is what the document says a client may send
            check_request(document, path, body)
        headers = {"x-api-key": key} if key else {}
        response = httpx.post(f"{base}{path}", json=body, headers=headers, timeout=30)
        check(document, response)
        return response

    def get(path: str, key: str | None = ok_key, **headers: str) -> httpx.Response:
        all_headers = {**headers, **({"x-api-key": key} if key else {})}
        response = httpx.get(f"{base}{path}", headers=all_headers, timeout=30)
        check(document, response)
        return response

    message = post("/v1/messages", {"model": "ainfera-inference", "max_tokens": 32,
                                    "messages": [{"role": "user", "content": "hi"}],
                                    "routing_hint": {"routing_preference": "cost"}})
    assert message.status_code == 200
    tools = post("/v1/messages", {"model": "fake-gemini", "max_tokens": 32, "tools": TOOLS,
                                  "messages": [{"role": "user", "content": "weather?"}]})
    assert tools.json()["content"][-1]["type"] == "tool_use"
    chat = post("/v1/chat/completions", {"model": "fake-gemini", "messages": [
        {"role": "user", "content": "weather?"}], "tools": [{"type": "function", "function": {
            "name": "get_weather", "parameters": TOOLS[0]["input_schema"]}}]})
    assert chat.json()["choices"][0]["finish_reason"] == "tool_calls"
    post("/v1/chat/completions", {"model": "fake-gpt", "messages": [
        {"role": "user", "content": "hi"}]})
    errors = {
        400: post("/v1/chat/completions", {"model": "fake-gpt", "messages": []}, valid=False),
        401: post("/v1/messages", {"model": "fake-gpt", "max_tokens": 5,
                                   "messages": [{"role": "user", "content": "x"}]}, key=None),
        404: post("/v1/chat/completions", {"model": "no-such-model",
                                           "messages": [{"role": "user", "content": "x"}]}),
        422: post("/v1/messages", {"model": "ainfera-inference", "max_tokens": 5,
                                   "routing_hint": {"min_quality": "0.99"},
                                   "messages": [{"role": "user", "content": "x"}]}),
        429: post("/v1/messages", {"model": "fake-gpt", "max_tokens": 5,
                                   "messages": [{"role": "user", "content": "x"}]},
                  key=capped_key),
        502: post("/v1/chat/completions", {"model": "fake-claude",
                                           "messages": [{"role": "user", "content": "x"}]}),
    }
    assert {status: r.status_code for status, r in errors.items()} == \
        {status: status for status in errors}

    public_id = message.json()["id"]
    get(f"/v1/inferences/{public_id}")
    get(f"/v1/inferences/{public_id}/decision")
    get("/v1/inferences/msg_00000000000000000000000000000000")  # 404
    get(f"/v1/inferences/{public_id}", key="ak_nobody")  # 401
    deadline = time.monotonic() + 60
    while (receipt := get(f"/v1/inferences/{public_id}/receipt")).status_code == 202:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert receipt.status_code == 200
    get(f"/v1/inferences/{public_id}/receipt?format=tlog-proof")
    get(f"/v1/inferences/{public_id}/receipt?format=nope")  # 400
    size = len(get("/v1/ledger/checkpoint", key=None).text.splitlines()) and \
        int(httpx.get(f"{base}/v1/ledger/checkpoint", timeout=30).text.splitlines()[1])
    get(f"/v1/ledger/consistency?first=1&second={size}", key=None)
    get("/v1/ledger/consistency?first=5&second=1", key=None)  # 400
    get("/v1/ledger/public-key", key=None)
    get("/v1/usage/daily?days=7", **{"x-ainfera-consistent": "true"})
    get("/v1/usage/daily?days=0")  # 400
    get("/v1/caps/rollup")
    get("/v1/agents/default/metrics")
    get("/v1/agents/nobody/metrics")  # 404
    get("/v1/models")
    get("/v1/models", **{"anthropic-version": "2023-06-01"})
    get("/healthz", key=None)
    get("/readyz", key=None)


def test_the_reference_page_needs_nothing_from_elsewhere(gateway: tuple[Server, World]) -> None:
    server, _ = gateway
    for path in ("/schema", "/schema/"):
        page = httpx.get(f"{server.url}{path}", timeout=30, follow_redirects=True)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "<script" not in page.text
        assert "http://" not in page.text
        assert "https://" not in page.text
        assert "POST /v1/messages" in page.text
        assert "MessagesRequest" in page.text
    for gone in ("/schema/swagger", "/schema/redoc"):
        assert httpx.get(f"{server.url}{gone}", timeout=30).status_code == 404
