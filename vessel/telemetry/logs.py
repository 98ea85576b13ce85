"""Structured JSON logs that carry the trace context of the work they describe.

Every line is one JSON object; inside a span (an RPC, a message being handled, a transfer)
it names the span's `trace_id` and `span_id`, so a trace found in a tracing backend leads
to its log lines and back. Tracing itself lives in `vessel.telemetry.tracing`.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from vessel.telemetry import tracing


def child_traceparent() -> str | None:
    """The traceparent an event published now continues: the current span's, None outside a
    trace (publishing then starts one). Kept for callers that encode events themselves."""
    return tracing.traceparent()


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        ids = tracing.current_ids()
        if ids is not None:
            doc["trace_id"], doc["span_id"] = ids
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
