"""The simulator's canned replies for models nobody scripted (`ainfera upstream-sim`, `make
demo`): enough behaviour to exercise every path of the gateway with the official SDKs, and
plainly labelled as simulated so nobody mistakes them for a model's answer.

- Tools offered, and the conversation does not end with a tool result: call the first tool
  with arguments made up from its JSON schema.
- Otherwise: one sentence of text that says it is simulated and echoes the length of the last
  user message (never its content, so a demo transcript shows no prompt back).
Token counts are estimated at four characters a token, so costs move with the request size.
"""

from __future__ import annotations

import json
from typing import Any

from upstream_sim.scripts import Behaviour, text, tool_call


def simulated_reply(model: str, request: Any) -> Behaviour:
    body = request if isinstance(request, dict) else {}
    said, after_tool = _last_user_turn(body)
    size = len(json.dumps(body.get("messages") or body.get("contents") or ""))
    input_tokens = max(1, size // 4)
    tools = _tools(body)
    if tools and not after_tool:
        name, schema = tools[0]
        return tool_call(name, _example(schema), input_tokens=input_tokens, output_tokens=12)
    if after_tool:
        reply = (f"[simulated {model}] Thanks, I got the tool's result "
                 f"({len(said)} characters). This is a canned reply from ainfera upstream-sim.")
    else:
        reply = (f"[simulated {model}] You sent {len(said)} characters. This is a canned reply "
                 "from ainfera upstream-sim, not a model; set a vendor key for real answers.")
    return text(reply, input_tokens=input_tokens, output_tokens=max(1, len(reply) // 4))


def _last_user_turn(body: dict[str, Any]) -> tuple[str, bool]:
    """The text of the last message and whether it carries a tool result, in any protocol."""
    messages = body.get("messages") or body.get("contents") or []
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return "", False
    last = messages[-1]
    if last.get("role") == "tool":  # OpenAI
        return str(last.get("content") or ""), True
    content = last.get("content", last.get("parts"))
    if isinstance(content, str):
        return content, False
    texts, tool_result = [], False
    for block in content if isinstance(content, list) else []:
        if not isinstance(block, dict):
            continue
        if block.get("type") == "tool_result" or "functionResponse" in block:
            tool_result = True
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
    return "".join(texts), tool_result


def _tools(body: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    found: list[tuple[str, dict[str, Any]]] = []
    for tool in body.get("tools") or []:
        if not isinstance(tool, dict):
            continue
        if "input_schema" in tool:  # Anthropic
            found.append((str(tool.get("name")), tool["input_schema"]))
        elif isinstance(tool.get("function"), dict):  # OpenAI
            function = tool["function"]
            found.append((str(function.get("name")), function.get("parameters") or {}))
        for declaration in tool.get("functionDeclarations") or []:  # Gemini
            found.append((str(declaration.get("name")), declaration.get("parameters") or {}))
    return found


def _example(schema: Any, name: str = "") -> Any:
    """A value that fits a JSON schema, made up (`Paris` for anything called city)."""
    if not isinstance(schema, dict):
        return "example"
    if schema.get("enum"):
        return schema["enum"][0]
    kind = str(schema.get("type", "object")).lower()
    if kind == "object":
        properties = schema.get("properties") or {}
        return {key: _example(value, key) for key, value in properties.items()
                if isinstance(key, str)}
    if kind == "array":
        return [_example(schema.get("items"), name)]
    if kind in ("integer", "number"):
        return 1
    if kind == "boolean":
        return True
    return "Paris" if "city" in name.lower() else "example"
