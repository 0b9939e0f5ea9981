"""Structural checks of client requests, before anything is recorded or sent.

Each check names the offending field in JSON-path form (`messages[2].content[0].type`), so a
malformed request gets a 400 that says what to fix instead of failing somewhere in a
translation. They check shape only (types, required keys, allowed roles); what the model
makes of valid content is the upstream's business. Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

ANTHROPIC_ROLES = frozenset({"user", "assistant"})
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})


def check_messages_request(body: dict[str, Any]) -> None:
    """An Anthropic Messages body (model and max_tokens are checked by the caller)."""
    _system(body.get("system"))
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        role = message.get("role")
        if role not in ANTHROPIC_ROLES:
            raise InvalidRequest(f"{where}.role must be 'user' or 'assistant', not {role!r}",
                                 f"{where}.role")
        _content(message.get("content"), f"{where}.content")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools must be a list", "tools")
        for i, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str) \
                    or not tool["name"]:
                raise InvalidRequest(f"tools[{i}] needs a string name", f"tools[{i}].name")
            schema = tool.get("input_schema")
            if schema is not None and not isinstance(schema, dict):
                raise InvalidRequest(f"tools[{i}].input_schema must be an object",
                                     f"tools[{i}].input_schema")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict)
                               or choice.get("type") not in {"auto", "any", "tool", "none"}):
        raise InvalidRequest("tool_choice must be an object whose type is auto, any, tool or "
                             "none", "tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" \
            and not isinstance(choice.get("name"), str):
        raise InvalidRequest("tool_choice of type 'tool' needs the tool's name",
                             "tool_choice.name")


def check_chat_request(body: dict[str, Any]) -> None:
    """An OpenAI Chat Completions body (model is checked by the caller)."""
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        role = message.get("role")
        if role not in CHAT_ROLES:
            raise InvalidRequest(f"{where}.role {role!r} is not one of "
                                 f"{', '.join(sorted(CHAT_ROLES))}", f"{where}.role")
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise InvalidRequest(f"{where}.content must be a string or a list of parts",
                                 f"{where}.content")
        if isinstance(content, list) and not all(
                isinstance(p, dict) and isinstance(p.get("type"), str) for p in content):
            raise InvalidRequest(f"{where}.content parts must be objects with a type",
                                 f"{where}.content")
        for j, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidRequest(f"{where}.tool_calls[{j}].function needs a name",
                                     f"{where}.tool_calls[{j}].function.name")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools must be a list", "tools")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidRequest(f"tools[{i}].function needs a string name",
                                     f"tools[{i}].function.name")


def _system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list) or not all(
            isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
            for b in system):
        raise InvalidRequest("system must be a string or a list of text blocks", "system")


def _content(content: Any, where: str) -> None:
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of content blocks", where)
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{where}[{j}] must be an object with a type",
                                 f"{where}[{j}].type")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise InvalidRequest(f"{where}[{j}].text must be a string", f"{where}[{j}].text")
        if block["type"] == "tool_use" and not (isinstance(block.get("id"), str)
                                                and isinstance(block.get("name"), str)):
            raise InvalidRequest(f"{where}[{j}] (tool_use) needs a string id and name",
                                 f"{where}[{j}]")
        if block["type"] == "tool_result" and not isinstance(block.get("tool_use_id"), str):
            raise InvalidRequest(f"{where}[{j}] (tool_result) needs a string tool_use_id",
                                 f"{where}[{j}].tool_use_id")


class InvalidRequest(ValueError):
    """A request whose shape is wrong; `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param
