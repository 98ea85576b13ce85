"""Rendering of API messages as table, JSON or YAML."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def render(messages: list[Message], fmt: str, related: dict[str, Any] | None = None) -> str:
    """`related`: what a list verb looked up beside its items, by item id (a schedule's
    last run); only the table shows it."""
    docs = [as_dict(m) for m in messages]
    if fmt == "json":
        return json.dumps(docs if len(docs) != 1 else docs[0], indent=2)
    if fmt == "yaml":
        import yaml  # only YAML output pays for loading it

        return yaml.safe_dump(docs if len(docs) != 1 else docs[0], sort_keys=False).rstrip()
    if not messages:
        return "(none)"
    from vessel_cli.tables import table

    return table(messages, docs, related or {})
