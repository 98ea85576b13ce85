"""Structured JSON logs and W3C trace context propagated through the bus.

The trace context is a `traceparent` value held in a context variable: a handler runs with
the traceparent of the message it handles, so everything it publishes continues that
trace with a new span id.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import secrets
import sys
from datetime import UTC, datetime

_TRACEPARENT = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
current_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "current_traceparent", default=None
)


def child_traceparent(parent: str | None = None) -> str:
    """A traceparent for a new span: same trace as `parent` (or the current one), or a new trace."""
    parent = parent or current_traceparent.get()
    match = _TRACEPARENT.match(parent) if parent else None
    trace_id = match.group(1) if match else secrets.token_hex(16)
    return f"00-{trace_id}-{secrets.token_hex(8)}-01"


def trace_id(traceparent: str | None) -> str | None:
    match = _TRACEPARENT.match(traceparent) if traceparent else None
    return match.group(1) if match else None


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        tid = trace_id(current_traceparent.get())
        if tid:
            doc["trace_id"] = tid
        if record.exc_info:
            doc["error"] = self.formatException(record.exc_info)
        return json.dumps(doc)


def setup_logging(service: str, level: str = "INFO") -> logging.Logger:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    return logging.getLogger(f"vessel.{service}")
