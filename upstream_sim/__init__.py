"""A SIMULATOR of the LLM vendors' wire protocols (Anthropic Messages, OpenAI Chat
Completions, Gemini generateContent) on a loopback socket: what the tests, the benchmarks,
`ainfera upstream-sim` and `make demo` put in place of the real vendors.

It answers in exactly the vendors' shapes (SSE framing, usage, tool calls, errors), so the
gateway and the official SDKs cannot tell it from the real thing at the wire; its answers are
canned, never generated. It stands alone: it imports nothing of the gateway.
"""

from upstream_sim.canned import simulated_reply
from upstream_sim.scripts import Behaviour, http_error, text, tool_call
from upstream_sim.server import FakeUpstream, start_fake_upstream, start_simulator

__all__ = [
    "Behaviour",
    "FakeUpstream",
    "http_error",
    "simulated_reply",
    "start_fake_upstream",
    "start_simulator",
    "text",
    "tool_call",
]
