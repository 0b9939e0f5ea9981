"""What a real upstream does with a request for a structured answer, done by the fake: a JSON
instance of the schema the request carries, in the place each vendor puts it.

The fake answers JSON only when the request it *received* asks for it (OpenAI
`response_format`, Anthropic `output_config.format` or a forced tool, Gemini
`generationConfig.responseMimeType`), so an SDK structured-output helper passes through the
gateway only if the gateway forwarded or translated the request faithfully; a dropped field
gets scripted prose back, and the helper fails, as it would against the real vendor.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from upstream_sim.scripts import Behaviour


def schema_instance(schema: Any, root: Any = None, depth: int = 0) -> Any:
    """A small value that satisfies `schema` (objects, arrays, scalars, enums, refs, anyOf)."""
    root = schema if root is None else root
    if not isinstance(schema, dict) or depth > 8:
        return None
    if "$ref" in schema:
        target: Any = root
        for part in str(schema["$ref"]).removeprefix("#/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) else {}
        return schema_instance(target, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for combinator in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(combinator) or [] if o.get("type") != "null"]
        if options:
            return schema_instance(options[0], root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), None)
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties") or {}
        if not properties:
            return {"answer": "structured"}
        return {name: schema_instance(sub, root, depth + 1) for name, sub in properties.items()}
    if kind == "array":
        return [schema_instance(schema.get("items") or {"type": "string"}, root, depth + 1)]
    return {"string": "text", "integer": 7, "number": 1.5, "boolean": True,
            "null": None}.get(str(kind), "text")


def structured_behaviour(vendor: str, request: dict[str, Any], behaviour: Behaviour) -> Behaviour:
    """The scripted behaviour, turned into the structured answer the request asks for (only a
    plain text script is turned; errors and scripted tool calls stay as scripted)."""
    if behaviour.kind != "text":
        return behaviour
    if vendor == "anthropic":
        choice = request.get("tool_choice") or {}
        if choice.get("type") == "tool":
            tool = next((t for t in request.get("tools") or []
                         if t.get("name") == choice.get("name")), None)
            if tool is not None:
                return dataclasses.replace(
                    behaviour, kind="tool", text="", tool_name=tool["name"],
                    tool_input=schema_instance(tool.get("input_schema") or {}))
        schema = ((request.get("output_config") or {}).get("format") or {}).get("schema")
        json_mode = False
    elif vendor == "openai":
        response_format = request.get("response_format") or {}
        schema = (response_format.get("json_schema") or {}).get("schema")
        json_mode = response_format.get("type") == "json_object"
    else:
        config = request.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        json_mode = config.get("responseMimeType") == "application/json"
    if schema is not None:
        return dataclasses.replace(behaviour, text=json.dumps(schema_instance(schema)))
    if json_mode:
        return dataclasses.replace(behaviour, text=json.dumps({"answer": behaviour.text}))
    return behaviour
