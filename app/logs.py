"""How the gateway's log reads: one format for every line of a process (ours, uvicorn's, the
libraries'), readable text by default and one JSON object per line with
`AINFERA_LOG_FORMAT=json`, times in UTC with `Z`.

A record may carry structured fields (`extra={"fields": {...}}`): JSON puts them at the top
level of the object, text appends them as `key=value`. What must never reach a log line: an
API key, a provider key, a password in a database URL, a prompt or a completion. Callers log
ids, model names and numbers only; `redact_url` hides the password of a URL before it is
logged.
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson

FORMATS = ("text", "json")
# Fields every JSON line has, in this order, before the record's own fields.
_BASE = ("time", "level", "logger", "message")


def utc_time(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return dict(fields) if isinstance(fields, dict) else {}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, then the record's fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": utc_time(record), "level": record.levelname.lower(),
            "logger": record.name, "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            if key not in _BASE:
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """`TIME LEVEL logger message key=value ...`; fields without a value, and those the record
    names in `in_message` (its message already says them), are left out."""

    def format(self, record: logging.LogRecord) -> str:
        parts = [utc_time(record), record.levelname, record.name, record.getMessage()]
        said = getattr(record, "in_message", ())
        parts += [f"{key}={_text(value)}" for key, value in fields_of(record).items()
                  if value is not None and key not in said]
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text(value: Any) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """Sends every logger's records to stderr in `log_format` ("text" or "json"). Called once by
    each long-running command (`serve`, `project`, `upstream-sim`) before it starts."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    # uvicorn's loggers propagate to the root when it is started with log_config=None; its
    # per-request access log stays off, since ainfera.access writes a richer line per call.
    logging.getLogger("uvicorn.access").disabled = True
    # httpx logs every upstream request at INFO, URL included; the access line says enough.
    logging.getLogger("httpx").setLevel(logging.WARNING)


def redact_url(url: str) -> str:
    """A URL fit for a log: the password replaced by `***`, everything else kept."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
