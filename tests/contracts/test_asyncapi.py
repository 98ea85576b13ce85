"""The AsyncAPI document covers the whole catalog and its references resolve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from vessel.contracts import asyncapi, subjects

DOCS = Path(__file__).resolve().parents[2] / "docs"


def resolve(document: dict[str, Any], ref: str) -> Any:
    node: Any = document
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return node


def test_every_message_is_a_channel_an_operation_and_a_message() -> None:
    doc = asyncapi.document()
    assert doc["asyncapi"].startswith("3.")
    addresses = {c["address"] for c in doc["channels"].values()}
    assert addresses == {m.subject for m in subjects.ALL}
    named = {
        resolve(doc, next(iter(c["messages"].values()))["$ref"])["name"]: key
        for key, c in doc["channels"].items()
    }
    for message in subjects.ALL:
        channel_id = named[message.type]
        channel = doc["channels"][channel_id]
        assert ("parameters" in channel) == ("{cluster}" in message.subject)
        operation = doc["operations"][channel_id]
        assert operation["action"] == ("send" if message.kind == "event" else "receive")
        assert resolve(doc, operation["channel"]["$ref"]) is channel
        described = resolve(doc, next(iter(channel["messages"].values()))["$ref"])
        assert described["name"] == message.type
        data = described["payload"]["allOf"][1]["properties"]["data"]["$ref"]
        assert (DOCS / data).is_file()
    assert (DOCS / "schemas" / "cloudevent.json").is_file()
