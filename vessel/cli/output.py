"""Rendering of API messages as table, JSON or YAML."""

from __future__ import annotations

import json
from typing import Any

import yaml
from google.protobuf.json_format import MessageToDict
from google.protobuf.message import Message

COLUMNS: dict[str, list[str]] = {
    "App": ["id", "state", "grouping", "workloads", "claims"],
    "Operation": ["id", "kind", "phase", "message", "requested_by"],
    "Token": ["name", "role", "clusters", "namespaces", "expires", "created_by"],
    "CreateTokenResponse": ["token.name", "token.role", "token.expires", "secret"],
}
EMPTY: dict[str, str] = {"clusters": "all", "namespaces": "all", "expires": "never"}
"""What an empty cell of these columns means (tokens: unscoped, no expiry)."""


def as_dict(message: Message) -> dict[str, Any]:
    return MessageToDict(message, preserving_proto_field_name=True)


def _cell(value: Any) -> str:
    if isinstance(value, list):
        return ",".join(v.get("name", "") if isinstance(v, dict) else str(v) for v in value)
    return "" if value is None else str(value)


def _lookup(doc: dict[str, Any], column: str) -> Any:
    value: Any = doc
    for part in column.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value in (None, [], ""):
        return EMPTY.get(column.rsplit(".", 1)[-1])
    return value


def render(messages: list[Message], fmt: str) -> str:
    docs = [as_dict(m) for m in messages]
    if fmt == "json":
        return json.dumps(docs if len(docs) != 1 else docs[0], indent=2)
    if fmt == "yaml":
        return yaml.safe_dump(docs if len(docs) != 1 else docs[0], sort_keys=False).rstrip()
    if not messages:
        return "(none)"
    columns = COLUMNS.get(messages[0].DESCRIPTOR.name, list(docs[0]))
    header = [c.rsplit(".", 1)[-1].upper() for c in columns]
    rows = [header] + [[_cell(_lookup(d, c)) for c in columns] for d in docs]
    widths = [max(len(r[i]) for r in rows) for i in range(len(columns))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )
