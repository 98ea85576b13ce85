"""An AsyncAPI 3.0 document of every event and command, generated from the catalog (written
to docs/asyncapi.json with the other generated docs), for tools that build clients or
documentation from AsyncAPI.

Seen from Vessel: events are operations it sends, commands operations it receives. Each
message is a CloudEvents envelope whose `data` is the payload's JSON Schema in
docs/schemas/.
"""

from __future__ import annotations

from typing import Any

from vessel.contracts import subjects
from vessel.contracts.envelope import CONTENT_TYPE


def _id(message: subjects.Message) -> str:
    return message.type.removeprefix("io.vessel.").replace(".", "-")


def _channel(message: subjects.Message) -> dict[str, Any]:
    channel: dict[str, Any] = {
        "address": message.subject,
        "messages": {_id(message): {"$ref": f"#/components/messages/{_id(message)}"}},
    }
    if "{cluster}" in message.subject:
        channel["parameters"] = {"cluster": {"description": "The cluster's id (a DNS label)"}}
    return channel


def _message(message: subjects.Message) -> dict[str, Any]:
    return {
        "name": message.type,
        "title": message.model.__name__,
        "summary": message.description,
        "contentType": CONTENT_TYPE,
        "payload": {
            "allOf": [
                {"$ref": "schemas/cloudevent.json"},
                {
                    "type": "object",
                    "properties": {
                        "type": {"const": message.type},
                        "data": {"$ref": f"schemas/{message.type}.json"},
                    },
                },
            ]
        },
    }


def document() -> dict[str, Any]:
    messages = sorted(subjects.ALL, key=lambda m: m.type)
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Vessel events and commands",
            "version": "1",
            "description": "Generated from vessel/contracts/subjects.py; see docs/events.md.",
        },
        "defaultContentType": CONTENT_TYPE,
        "servers": {
            "nats": {
                "host": "localhost:4222",
                "protocol": "nats",
                "description": f"JetStream: events in stream {subjects.EVENTS_STREAM}, "
                f"commands in the work-queue stream {subjects.COMMANDS_STREAM}",
            }
        },
        "channels": {_id(m): _channel(m) for m in messages},
        "operations": {
            _id(m): {
                "action": "send" if m.kind == "event" else "receive",
                "channel": {"$ref": f"#/channels/{_id(m)}"},
                "summary": m.description,
            }
            for m in messages
        },
        "components": {"messages": {_id(m): _message(m) for m in messages}},
    }
