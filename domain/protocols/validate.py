"""Structural checks of client requests, before anything is recorded or sent.

Each check names the offending field in JSON-path form (`messages[2].content[0].type`), so a
malformed request gets a 400 that says what to fix instead of failing somewhere in a
translation. They check shape only (types, required keys, allowed roles); what the model
makes of valid content is the upstream's business. Pure: no I/O.

Before any of that, `check_bounds` holds every body to one documented limit on nesting
(`MAX_DEPTH`), walking it without recursion: the digest, the routing estimate and the JSON
encoders that come after it all recurse, and a body nested a few hundred levels deep would
otherwise overflow them (a 500) instead of being refused (a 400). The size limit
(`MAX_BODY_BYTES`) is enforced while the body is read, before it is parsed.
"""

from __future__ import annotations

from typing import Any

ANTHROPIC_ROLES = frozenset({"user", "assistant"})
CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# The largest request body accepted, in bytes (the Messages API's own limit is 32 MB).
MAX_BODY_BYTES = 32 * 1024 * 1024
# The deepest nesting of objects and lists accepted, the body itself being level 1. A tool
# schema 30 objects deep fits; the JSON encoders downstream stop at 255 levels, and the ones
# that recurse in Python near 1,000.
MAX_DEPTH = 64
# The largest output limit accepted (`max_tokens`): above any model's, and small enough that
# its worst-case cost is always a countable amount for the spend caps.
MAX_OUTPUT_TOKENS = 1_000_000
# How much of the path to a too-deep value an error names: enough to find the field.
_PATH_SHOWN = 4


def check_bounds(body: Any) -> None:
    """Refuses a body nested deeper than MAX_DEPTH, naming the field where it happens.

    Iterative on purpose: this is the guard that makes recursion safe afterwards."""
    if not isinstance(body, dict | list):
        return
    stack: list[tuple[Any, int, tuple[str | int, ...]]] = [(body, 1, ())]
    while stack:
        value, depth, path = stack.pop()
        if depth > MAX_DEPTH:
            where = json_path(path[:_PATH_SHOWN]) + ("..." if len(path) > _PATH_SHOWN else "")
            raise InvalidRequest(f"{where} is nested deeper than {MAX_DEPTH} levels, the most "
                                 "a request may have", json_path(path[:_PATH_SHOWN]))
        items = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in items:
            if isinstance(child, dict | list):
                stack.append((child, depth + 1, (*path, key)))


def json_path(path: tuple[str | int, ...]) -> str:
    """`("messages", 2, "content")` as `messages[2].content`; the body itself is `body`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "body"


def check_max_tokens(value: Any, name: str = "max_tokens") -> None:
    if type(value) is not int or not 1 <= value <= MAX_OUTPUT_TOKENS:
        raise InvalidRequest(f"{name} must be an integer from 1 to {MAX_OUTPUT_TOKENS}", name)


def check_messages_request(body: dict[str, Any]) -> None:
    """An Anthropic Messages body (model and max_tokens, which count_tokens bodies lack, are
    checked by the caller)."""
    _system(body.get("system"))
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        role = message.get("role")
        if not isinstance(role, str) or role not in ANTHROPIC_ROLES:
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
    stops = body.get("stop_sequences")
    if stops is not None and not (isinstance(stops, list)
                                  and all(isinstance(s, str) for s in stops)):
        raise InvalidRequest("stop_sequences must be a list of strings", "stop_sequences")
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise InvalidRequest("metadata must be an object", "metadata")
        _optional(metadata, "user_id", str, "a string", "metadata")
    choice = body.get("tool_choice")
    if choice is not None and (not isinstance(choice, dict)
                               or choice.get("type") not in ("auto", "any", "tool", "none")):
        raise InvalidRequest("tool_choice must be an object whose type is auto, any, tool or "
                             "none", "tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "tool" \
            and not isinstance(choice.get("name"), str):
        raise InvalidRequest("tool_choice of type 'tool' needs the tool's name",
                             "tool_choice.name")


def check_chat_request(body: dict[str, Any]) -> None:
    """An OpenAI Chat Completions body (model is checked by the caller): every field the
    translation to the canonical form reads, so it never meets a shape it cannot handle."""
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        role = message.get("role")
        if not isinstance(role, str) or role not in CHAT_ROLES:
            raise InvalidRequest(f"{where}.role {role!r} is not one of "
                                 f"{', '.join(sorted(CHAT_ROLES))}", f"{where}.role")
        _chat_content(message.get("content"), f"{where}.content")
        _optional(message, "tool_call_id", str, "a string", where)
        _optional(message, "refusal", str, "a string", where)
        calls = message.get("tool_calls")
        if calls is not None and not isinstance(calls, list):
            raise InvalidRequest(f"{where}.tool_calls must be a list", f"{where}.tool_calls")
        for j, call in enumerate(calls or []):
            at = f"{where}.tool_calls[{j}]"
            function = call.get("function") if isinstance(call, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidRequest(f"{at}.function needs a name", f"{at}.function.name")
            if not isinstance(call.get("id"), str):
                raise InvalidRequest(f"{at}.id must be a string", f"{at}.id")
            _optional(function, "arguments", str, "a string of JSON", f"{at}.function")
    for name in ("max_tokens", "max_completion_tokens"):
        if body.get(name) is not None:
            check_max_tokens(body[name], name)
    n = body.get("n")
    if n is not None and (type(n) is not int or n < 1):
        raise InvalidRequest("n must be a positive integer", "n")
    stop = body.get("stop")
    if stop is not None and not isinstance(stop, str) and not (
            isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("stop must be a string or a list of strings", "stop")
    for name, kind, what in (("user", str, "a string"), ("stream_options", dict, "an object")):
        _optional(body, name, kind, what, "")
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            raise InvalidRequest("tools must be a list", "tools")
        for i, tool in enumerate(tools):
            function = tool.get("function") if isinstance(tool, dict) else None
            if not isinstance(function, dict) or not isinstance(function.get("name"), str):
                raise InvalidRequest(f"tools[{i}].function needs a string name",
                                     f"tools[{i}].function.name")
            if tool.get("type") != "function":
                raise InvalidRequest(f"tools[{i}].type must be 'function'", f"tools[{i}].type")
            _optional(function, "parameters", dict, "an object", f"tools[{i}].function")
            _optional(function, "description", str, "a string", f"tools[{i}].function")
    choice = body.get("tool_choice")
    if choice is not None and choice not in ("auto", "none", "required") and not (
            isinstance(choice, dict) and choice.get("type") == "function"
            and isinstance(choice.get("function"), dict)
            and isinstance(choice["function"].get("name"), str)):
        raise InvalidRequest("tool_choice must be 'auto', 'none', 'required' or "
                             '{"type": "function", "function": {"name": ...}}', "tool_choice")


def _chat_content(content: Any, where: str) -> None:
    if content is None or isinstance(content, str):
        return
    if not isinstance(content, list):
        raise InvalidRequest(f"{where} must be a string or a list of parts", where)
    for j, part in enumerate(content):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise InvalidRequest(f"{where} parts must be objects with a type", where)
        kind = part["type"]
        if kind == "image_url":
            image = part.get("image_url")
            if not isinstance(image, dict) or not isinstance(image.get("url"), str):
                raise InvalidRequest(f"{where}[{j}].image_url.url must be a string",
                                     f"{where}[{j}].image_url.url")
        elif kind in ("text", "refusal"):
            _optional(part, kind, str, "a string", f"{where}[{j}]")


def _optional(holder: dict[str, Any], name: str, kind: type, what: str, where: str) -> None:
    """A field that may be absent or null, and is of `kind` otherwise."""
    value = holder.get(name)
    if value is not None and not isinstance(value, kind):
        field = f"{where}.{name}" if where else name
        raise InvalidRequest(f"{field} must be {what}", field)


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
            raise InvalidRequest(f"{where}[{j}].type must be a string: every content block "
                                 "is an object with a type", f"{where}[{j}].type")
        if block["type"] == "text" and not isinstance(block.get("text"), str):
            raise InvalidRequest(f"{where}[{j}].text must be a string", f"{where}[{j}].text")
        if block["type"] == "tool_use" and not (isinstance(block.get("id"), str)
                                                and isinstance(block.get("name"), str)):
            raise InvalidRequest(f"{where}[{j}] (tool_use) needs a string id and name",
                                 f"{where}[{j}]")
        if block["type"] == "tool_result":
            if not isinstance(block.get("tool_use_id"), str):
                raise InvalidRequest(f"{where}[{j}] (tool_result) needs a string tool_use_id",
                                     f"{where}[{j}].tool_use_id")
            inner = block.get("content")
            if inner is not None and not isinstance(inner, str):
                _content(inner, f"{where}[{j}].content")
        if block["type"] in ("image", "document"):
            source = block.get("source")
            if not isinstance(source, dict) or not isinstance(source.get("type"), str):
                raise InvalidRequest(f"{where}[{j}].source must be an object with a type",
                                     f"{where}[{j}].source")
            needed = {"base64": ("media_type", "data"), "url": ("url",)}.get(source["type"], ())
            for name in needed:
                if not isinstance(source.get(name), str):
                    raise InvalidRequest(f"{where}[{j}].source.{name} must be a string",
                                         f"{where}[{j}].source.{name}")


class InvalidRequest(ValueError):
    """A request whose shape is wrong; `param` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.param = param
