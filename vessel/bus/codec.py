"""Encoding and decoding of bus messages: CloudEvent envelope plus catalog payload."""

from __future__ import annotations

from pydantic import ValidationError

from vessel.contracts.envelope import CloudEvent, new_event
from vessel.contracts.models import Payload
from vessel.contracts.subjects import BY_TYPE, Message


class DecodeError(Exception):
    """The message is not a valid CloudEvent of a known type with a valid payload."""

    def __init__(self, message: str, event: CloudEvent | None = None) -> None:
        super().__init__(message)
        self.event = event


def encode(
    message: Message, payload: Payload, source: str, subject: str | None, traceparent: str | None
) -> CloudEvent:
    if not isinstance(payload, message.model):
        raise TypeError(
            f"{message.type} carries {message.model.__name__}, not {type(payload).__name__}"
        )
    return new_event(message.type, source, payload.model_dump(mode="json"), subject, traceparent)


def decode(body: bytes) -> tuple[CloudEvent, Payload]:
    try:
        event = CloudEvent.model_validate_json(body)
    except ValidationError as exc:
        raise DecodeError(f"invalid CloudEvent envelope: {_brief(exc)}") from exc
    message = BY_TYPE.get(event.type)
    if message is None:
        raise DecodeError(f"unknown event type {event.type!r}", event)
    try:
        payload = message.model.model_validate(event.data)
    except ValidationError as exc:
        raise DecodeError(f"invalid {event.type} payload: {_brief(exc)}", event) from exc
    return event, payload


def _brief(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(p) for p in err['loc']) or '<root>'}: {err['msg']}" for err in exc.errors()
    )


def secret_fields(message: Message) -> set[str]:
    """Payload fields marked `json_schema_extra={"secret": True}`: never copied anywhere."""
    return {
        name
        for name, field in message.model.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("secret")
    }


def for_dead_letter(body: bytes, event: CloudEvent | None, limit: int = 65536) -> str:
    """The message as kept with its dead letter: secret fields redacted, at most `limit`."""
    message = BY_TYPE.get(event.type) if event is not None else None
    hidden = secret_fields(message) if message is not None else set()
    if event is not None and hidden:
        data = {k: ("<redacted>" if k in hidden else v) for k, v in event.data.items()}
        body = event.model_copy(update={"data": data}).model_dump_json().encode()
    return body[:limit].decode("utf-8", "replace")
