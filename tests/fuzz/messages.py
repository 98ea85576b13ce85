"""Hypothesis strategies for hostile protobuf requests and event payloads, derived from the
descriptors and the catalog, so every RPC and message type added later is fuzzed too."""

from __future__ import annotations

import string
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message
from hypothesis import strategies as st

HOSTILE_STRINGS = [
    "",
    " ",
    "a",
    "cluster-a",
    "cluster-b",
    "cluster-a.shop.shop",
    "cluster-a.kube-system.x",
    "shop",
    "default",
    "kube-system",
    "vessel-local",
    "../../etc/passwd",
    "/etc/passwd",
    "a/../../b",
    "backups/../tokens",
    "*",
    ">",
    "vessel.cmd.>",
    "$KV.tokens.x",
    "a.b",
    "..",
    ".",
    "\x00",
    "a\x00b",
    "\n\r\t",
    "é" * 300,
    "A" * 5000,
    "a" * 253,
    "a" * 64,
    "UPPER",
    '{"$ne": 1}',
    "'; DROP TABLE x;--",
    "${jndi:ldap://x/a}",
    "%s%s%n",
    "-1",
    "NaN",
    "null",
    "0 0 * * *",
    "61 25 * * *",
    "@reboot",
    '[{"op": "remove", "path": "/metadata"}]',
    "not json",
    "Bearer x",
    "\u202etxt.exe",
    "\ud7ff\ue000",
]

hostile_text = st.one_of(
    st.sampled_from(HOSTILE_STRINGS),
    st.text(max_size=40),
    st.text(alphabet=string.ascii_lowercase + "-.", min_size=1, max_size=70),
)

_INT_RANGES = {
    FieldDescriptor.TYPE_INT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SINT32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_SFIXED32: (-(2**31), 2**31 - 1),
    FieldDescriptor.TYPE_INT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SINT64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_SFIXED64: (-(2**63), 2**63 - 1),
    FieldDescriptor.TYPE_UINT32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_FIXED32: (0, 2**32 - 1),
    FieldDescriptor.TYPE_UINT64: (0, 2**64 - 1),
    FieldDescriptor.TYPE_FIXED64: (0, 2**64 - 1),
}


def _scalar(field: FieldDescriptor) -> st.SearchStrategy[Any]:
    kind = field.type
    if kind == FieldDescriptor.TYPE_STRING:
        return hostile_text
    if kind == FieldDescriptor.TYPE_BYTES:
        return st.binary(max_size=64)
    if kind == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if kind in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
        return st.one_of(
            st.sampled_from([0.0, -1.0, 1e-9, 1e308, float("nan"), float("inf"), -float("inf")]),
            st.floats(width=32 if kind == FieldDescriptor.TYPE_FLOAT else 64),
        )
    if kind == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-5, 1000))
    low, high = _INT_RANGES[kind]
    edges = [low, high, 0, -1 if low < 0 else 1, 1, 100, 1001, 3601]
    return st.one_of(
        st.sampled_from([e for e in edges if low <= e <= high]), st.integers(low, high)
    )


def _value(field: FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.type == FieldDescriptor.TYPE_MESSAGE:
        return tree(field.message_type, depth + 1)
    return _scalar(field)


def _is_map(field: FieldDescriptor) -> bool:
    return field.type == FieldDescriptor.TYPE_MESSAGE and field.message_type.GetOptions().map_entry


def tree(descriptor: Descriptor, depth: int = 0) -> st.SearchStrategy[dict[str, Any]]:
    """A dict of field name -> value for some (possibly none) of the message's fields."""
    if depth > 3 or descriptor.full_name.startswith("google.protobuf."):
        return st.just({})
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for field in descriptor.fields:
        if _is_map(field):
            key, value = (
                field.message_type.fields_by_name["key"],
                field.message_type.fields_by_name["value"],
            )
            fields[field.name] = st.dictionaries(_scalar(key), _value(value, depth), max_size=4)
        elif field.is_repeated:
            fields[field.name] = st.lists(_value(field, depth), max_size=4)
        else:
            fields[field.name] = _value(field, depth)
    return st.fixed_dictionaries({}, optional=fields)


def populate(message: Message, values: dict[str, Any]) -> Message:
    """Set `values` on `message`; a value protobuf itself refuses (bad UTF-8) is dropped."""
    for name, value in values.items():
        field = message.DESCRIPTOR.fields_by_name[name]
        target = getattr(message, name)
        try:
            if _is_map(field):
                for k, v in value.items():
                    if isinstance(v, dict):
                        populate(target[k], v)
                    else:
                        target[k] = v
            elif field.is_repeated:
                for item in value:
                    if isinstance(item, dict):
                        populate(target.add(), item)
                    else:
                        target.append(item)
            elif isinstance(value, dict):
                populate(target, value)
            else:
                setattr(message, name, value)
        except (ValueError, TypeError):
            continue  # e.g. lone surrogates: not encodable, so not sendable by any client
    return message


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=False),
        hostile_text,
    ),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(hostile_text, inner, max_size=4)
    ),
    max_leaves=12,
)
