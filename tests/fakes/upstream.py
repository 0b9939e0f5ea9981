"""The loopback fake upstream the tests script: the package's upstream simulator
(`upstream_sim`), re-exported under the name the tests have always used."""

from upstream_sim.server import (
    Behaviour,
    FakeUpstream,
    RecordedRequest,
    closed_port,
    http_error,
    start_fake_upstream,
    text,
    tool_call,
)

__all__ = [
    "Behaviour",
    "FakeUpstream",
    "RecordedRequest",
    "closed_port",
    "http_error",
    "start_fake_upstream",
    "text",
    "tool_call",
]
