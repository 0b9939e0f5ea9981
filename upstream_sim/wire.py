"""The fake upstream's wire building blocks: the scripted response record, SSE framing, and
the base every vendor's reply builder shares."""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

from upstream_sim.scripts import Behaviour


@dataclass
class Response:
    behaviour: Behaviour
    status: int
    headers: dict[str, str]
    body: bytes = b""
    frames: list[bytes] | None = None  # a chunked SSE stream, one frame per chunk
    error_frame: bytes = b""


def as_json(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def sse(data: Any, event: str | None = None) -> bytes:
    line = f"event: {event}\n" if event else ""
    return f"{line}data: {json.dumps(data)}\n\n".encode()


def pieces(text: str) -> list[str]:
    return re.findall(r"\s*\S+", text)


def json_pieces(obj: Any) -> list[str]:
    raw = json.dumps(obj)
    return [raw[i : i + 8] for i in range(0, len(raw), 8)]


class Vendor(ABC):
    """One scripted reply in one vendor's wire shape: JSON body, stream frames, error forms."""

    request_id_header = "x-request-id"

    def __init__(
        self, model: str, behaviour: Behaviour, request: dict[str, Any], n: int, stream: bool
    ) -> None:
        self.model, self.b, self.request, self.n, self.stream = model, behaviour, request, n, stream

    @property
    def request_id(self) -> str:
        return f"req_fake_{self.n}"

    def headers(self) -> dict[str, str]:
        headers = {"content-type": "text/event-stream" if self.stream else "application/json"}
        if self.request_id_header:
            headers[self.request_id_header] = self.request_id
        return headers

    def error(self, status: int, message: str) -> Response:
        headers = {"content-type": "application/json"}
        if self.request_id_header:
            headers[self.request_id_header] = self.request_id
        return Response(self.b, status, headers, as_json(self.error_body(status, message)))

    @abstractmethod
    def message(self) -> Any: ...

    @abstractmethod
    def frames(self) -> list[bytes]: ...

    @abstractmethod
    def error_frame(self) -> bytes: ...

    @abstractmethod
    def error_body(self, status: int, message: str) -> Any: ...
