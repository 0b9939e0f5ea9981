"""What the fake upstream is told to do for a model: the `Behaviour` record and its builders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Behaviour:
    kind: str = "text"  # "text" | "tool" | "error" | "garbage" (200 with a body no API sends)
    text: str = "Hello from the fake upstream."
    tool_name: str = "get_weather"
    tool_input: dict[str, Any] = field(default_factory=lambda: {"city": "Paris"})
    status: int = 200
    error_type: str | None = None  # vendor error type; a per-status default when None
    error_message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)
    first_byte_delay: float = 0.0  # seconds before the response headers
    chunk_delay: float = 0.0  # seconds between stream frames
    # Stream frames sent before the failure. Anthropic's first three are message_start,
    # content_block_start and ping; OpenAI's first is the role chunk; Gemini's carry text.
    fail_after: int | None = None
    failure: str = "drop"  # "drop" (abort the connection) | "error_event" (in-band error)
    usage: bool = True  # False: the stream or response carries no usage at all
    input_tokens: int = 12
    output_tokens: int = 7


def text(text: str = "Hello from the fake upstream.", **kw: Any) -> Behaviour:
    return Behaviour(kind="text", text=text, **kw)


def tool_call(
    name: str = "get_weather", input: dict[str, Any] | None = None, **kw: Any
) -> Behaviour:
    kw.setdefault("text", "")
    return Behaviour(kind="tool", tool_name=name, tool_input=input or {"city": "Paris"}, **kw)


def http_error(status: int, error_type: str | None = None, **kw: Any) -> Behaviour:
    return Behaviour(kind="error", status=status, error_type=error_type, **kw)


def garbage(body: bytes = b'{"not": "a response", "content": 5}', **kw: Any) -> Behaviour:
    """A 200 whose body is not a valid response of the vendor's API."""
    return Behaviour(kind="garbage", text=body.decode(), **kw)
