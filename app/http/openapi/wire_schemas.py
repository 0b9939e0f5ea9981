"""The inference surfaces' wire shapes as msgspec structs, for the OpenAPI document only.

The handlers never decode into these (app.http.wire parses bodies itself, so unknown fields
pass through to the vendor and a bad field gets our own 400); these structs describe what the
SDKs send and receive, and a test validates real responses against the document built from
them. Fields the vendors add later are allowed: no struct forbids unknown fields.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import UNSET, Meta, Struct, UnsetType

from domain.routing import ROUTER

MODEL_DESCRIPTION = (
    f"`{ROUTER}` lets the router choose: the cheapest catalog model above the quality floor, "
    "falling back to the next on a retryable error before the first byte. A catalog slug "
    "(`GET /v1/models`) pins that model: no routing, no fallback, still recorded, debited and "
    "capped. Anything else is 404 `not_found_error`."
)
Model = Annotated[str, Meta(description=MODEL_DESCRIPTION, examples=[ROUTER])]
Decimal01 = Annotated[str, Meta(pattern=r"^(0(\.\d+)?|1(\.0+)?)$",
                                description="A decimal from 0 to 1, as a string or a number.")]


class RoutingHint(Struct, omit_defaults=True):
    """Steers the router for this call; never forwarded upstream. Only for
    `model: "ainfera-inference"`."""

    min_quality: Annotated[Decimal01 | float, Meta(
        description="The quality floor (0 to 1); an explicit floor always wins. No model "
                    "clearing it is 422 `rejected_floor`.", examples=["0.7"])] | UnsetType = UNSET
    routing_preference: Annotated[Literal["quality", "balanced", "cost"], Meta(
        description="Moves the default floor by 0.10 up (`quality`) or down (`cost`) within "
                    "[0.50, 0.85], when the gateway runs with "
                    "AINFERA_ROUTING_PREFERENCE_LIVE=1; otherwise recorded only.")] | UnsetType \
        = UNSET


ROUTING_HINT = Meta(description="Ainfera's routing hint (not an Anthropic or OpenAI field).")


# --- Anthropic Messages -------------------------------------------------------------------

class TextBlock(Struct, tag_field="type", tag="text"):
    text: str


class ImageBlock(Struct, tag_field="type", tag="image"):
    source: dict[str, Any]


class DocumentBlock(Struct, tag_field="type", tag="document"):
    source: dict[str, Any]


class ToolUseBlock(Struct, tag_field="type", tag="tool_use"):
    id: str
    name: str
    input: dict[str, Any]


class ToolResultBlock(Struct, tag_field="type", tag="tool_result"):
    tool_use_id: str
    content: str | list[dict[str, Any]] | UnsetType = UNSET
    is_error: bool | UnsetType = UNSET


class ThinkingBlock(Struct, tag_field="type", tag="thinking"):
    thinking: str
    signature: str | UnsetType = UNSET


RequestBlock = TextBlock | ImageBlock | DocumentBlock | ToolUseBlock | ToolResultBlock | \
    ThinkingBlock
ResponseBlock = TextBlock | ToolUseBlock | ThinkingBlock


class AnthropicMessage(Struct):
    role: Literal["user", "assistant"]
    content: str | list[RequestBlock]


class AnthropicTool(Struct):
    name: str
    input_schema: dict[str, Any]
    description: str | UnsetType = UNSET


class MessagesRequest(Struct):
    """POST /v1/messages: the Anthropic Messages API. Other Anthropic fields (`thinking`,
    `service_tier`, ...) are passed through to Anthropic backends."""

    model: Model
    max_tokens: Annotated[int, Meta(ge=1)]
    messages: Annotated[list[AnthropicMessage], Meta(min_length=1)]
    system: str | list[TextBlock] | UnsetType = UNSET
    tools: list[AnthropicTool] | UnsetType = UNSET
    tool_choice: dict[str, Any] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    metadata: dict[str, Any] | UnsetType = UNSET
    stop_sequences: list[str] | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    top_k: int | UnsetType = UNSET
    routing_hint: Annotated[RoutingHint, ROUTING_HINT] | UnsetType = UNSET


class AnthropicUsage(Struct):
    input_tokens: int | None
    output_tokens: int | None
    cache_creation_input_tokens: int | UnsetType | None = UNSET
    cache_read_input_tokens: int | UnsetType | None = UNSET


class MessageResponse(Struct):
    """A non-streamed answer; `id` equals the `x-ainfera-inference-id` header."""

    id: Annotated[str, Meta(pattern=r"^msg_[0-9a-f]{32}$")]
    type: Literal["message"]
    role: Literal["assistant"]
    model: Annotated[str, Meta(description="The catalog slug that served the call.")]
    content: list[ResponseBlock]
    stop_reason: Literal["end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn",
                         "refusal"] | None
    stop_sequence: str | None
    usage: AnthropicUsage


class AnthropicErrorDetail(Struct):
    type: Literal["invalid_request_error", "authentication_error", "permission_error",
                  "not_found_error", "request_too_large", "rate_limit_error", "api_error",
                  "overloaded_error"]
    message: str


class AnthropicError(Struct):
    """Every error on an Anthropic-shaped path (everything but /v1/chat/...)."""

    type: Literal["error"]
    error: AnthropicErrorDetail
    request_id: str | None


# --- OpenAI Chat Completions --------------------------------------------------------------

class FunctionCall(Struct):
    name: str
    arguments: Annotated[str, Meta(description="The arguments as a JSON text.")]


class ToolCall(Struct):
    id: str
    type: Literal["function"]
    function: FunctionCall


class ChatMessage(Struct):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | UnsetType | None = UNSET
    name: str | UnsetType = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET
    tool_call_id: str | UnsetType = UNSET


class FunctionDefinition(Struct):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET


class ChatTool(Struct):
    type: Literal["function"]
    function: FunctionDefinition


class StreamOptions(Struct):
    include_usage: bool | UnsetType = UNSET


class ChatCompletionRequest(Struct):
    """POST /v1/chat/completions: the OpenAI Chat Completions API (`n` > 1 and audio are
    refused with 400)."""

    model: Model
    messages: Annotated[list[ChatMessage], Meta(min_length=1)]
    max_completion_tokens: Annotated[int, Meta(ge=1)] | UnsetType = UNSET
    max_tokens: Annotated[int, Meta(ge=1, description="Default 4096 when neither limit is "
                                                      "sent.")] | UnsetType = UNSET
    stream: bool | UnsetType = UNSET
    stream_options: StreamOptions | UnsetType = UNSET
    tools: list[ChatTool] | UnsetType = UNSET
    tool_choice: str | dict[str, Any] | UnsetType = UNSET
    temperature: float | UnsetType = UNSET
    top_p: float | UnsetType = UNSET
    stop: str | list[str] | UnsetType = UNSET
    n: Literal[1] | UnsetType = UNSET
    user: str | UnsetType = UNSET
    routing_hint: Annotated[RoutingHint, ROUTING_HINT] | UnsetType = UNSET


class AssistantMessage(Struct):
    role: Literal["assistant"]
    content: str | None
    refusal: str | UnsetType | None = UNSET
    tool_calls: list[ToolCall] | UnsetType = UNSET


class Choice(Struct):
    index: int
    message: AssistantMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter"] | None
    logprobs: dict[str, Any] | UnsetType | None = UNSET


class ChatUsage(Struct):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatCompletion(Struct):
    """A non-streamed answer; `id` equals the `x-ainfera-inference-id` header."""

    id: Annotated[str, Meta(pattern=r"^chatcmpl-[0-9a-f]{32}$")]
    object: Literal["chat.completion"]
    created: int
    model: Annotated[str, Meta(description="The catalog slug that served the call.")]
    choices: list[Choice]
    usage: ChatUsage | UnsetType = UNSET


class OpenAIErrorDetail(Struct):
    message: str
    type: str
    param: str | None
    code: str | None


class OpenAIError(Struct):
    """Every error on /v1/chat/...: the four keys are always present."""

    error: OpenAIErrorDetail


WIRE_TYPES: tuple[Any, ...] = (MessagesRequest, MessageResponse, AnthropicError,
                               ChatCompletionRequest, ChatCompletion, OpenAIError)


def _check() -> None:
    # Fails at import, not at the first /schema request, if a struct cannot have a schema.
    msgspec.json.schema_components(WIRE_TYPES)


_check()
