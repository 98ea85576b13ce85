"""CloudEvents 1.0 envelope in structured JSON mode, as carried on NATS.

The envelope is validated separately from the payload so that a message with a valid
envelope but an invalid payload can still be dead-lettered with its id and type.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

CONTENT_TYPE = "application/cloudevents+json"


class CloudEvent(BaseModel):
    """A CloudEvents 1.0 event; `data` is the payload as plain JSON."""

    model_config = ConfigDict(extra="allow")

    specversion: str = Field("1.0", pattern=r"^1\.0$")
    id: str = Field(min_length=1)
    source: str = Field(min_length=1, description="/clusters/<id>/<service>")
    type: str = Field(pattern=r"^io\.vessel\.[a-z0-9_.]+\.v[0-9]+$")
    subject: str | None = Field(None, description="Path of the resource the event is about")
    time: datetime
    datacontenttype: str = "application/json"
    traceparent: str | None = Field(None, description="W3C trace context (distributed tracing)")
    data: dict[str, Any]


def new_event(
    type_: str, source: str, data: dict[str, Any], subject: str | None, traceparent: str | None
) -> CloudEvent:
    return CloudEvent(
        id=str(uuid.uuid4()),
        source=source,
        type=type_,
        subject=subject,
        time=datetime.now(UTC),
        traceparent=traceparent,
        data=data,
    )
