"""Label and field selectors with the syntax and matching rules of apimachinery.

Label selectors support equality (``=``, ``==``, ``!=``), set (``in``, ``notin``),
existence (``key``, ``!key``) and numeric (``>``, ``<``) requirements joined by commas.
Field selectors support ``=``, ``==`` and ``!=`` on the per-kind field set the real
server indexes; any other field is rejected with 400, as the real server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from vessel_dev.emulators.kube.errors import bad_request

Obj = dict[str, Any]
Predicate = Callable[[Obj], bool]

_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_NOT_EXISTS = re.compile(rf"!\s*({_KEY})")
_EXISTS = re.compile(rf"({_KEY})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s*\(([^()]*)\)")
_COMPARE = re.compile(rf"({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})")


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key, "")
        if self.op == "exists":
            return present
        if self.op == "!exists":
            return not present
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            # apimachinery: a missing key satisfies "notin" and "!=".
            return not present or value not in self.values
        return present and _numeric_compare(value, self.op, next(iter(self.values)))


def _numeric_compare(value: str, op: str, bound: str) -> bool:
    try:
        actual, limit = int(value), int(bound)
    except ValueError:
        return False
    return actual > limit if op == ">" else actual < limit


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses, so ``a in (x,y),b`` yields two terms."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def _parse_requirement(term: str) -> Requirement:
    term = term.strip()
    if match := _SET.fullmatch(term):
        values = frozenset(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(match.group(1), match.group(2), values)
    if match := _COMPARE.fullmatch(term):
        key, op, value = match.groups()
        if op in ("=", "=="):
            return Requirement(key, "in", frozenset({value}))
        if op == "!=":
            return Requirement(key, "notin", frozenset({value}))
        if not value.lstrip("-").isdigit():
            raise bad_request(f"unable to parse requirement: {term!r}: expected an integer")
        return Requirement(key, op, frozenset({value}))
    if match := _NOT_EXISTS.fullmatch(term):
        return Requirement(match.group(1), "!exists")
    if match := _EXISTS.fullmatch(term):
        return Requirement(match.group(1), "exists")
    raise bad_request(f"unable to parse requirement: found {term!r}, expected a selector term")


def parse_label_selector(text: str) -> list[Requirement]:
    if not text.strip():
        return []
    return [_parse_requirement(term) for term in _split_top_level(text)]


def labels_match(requirements: list[Requirement], obj: Obj) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(req.matches(labels) for req in requirements)


_COMMON_FIELDS = ("metadata.name", "metadata.namespace")
_KIND_FIELDS: dict[str, tuple[str, ...]] = {
    "events": (
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "type",
        "source",
    ),
    "pods": (
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.nominatedNodeName",
    ),
    "secrets": ("type",),
    "namespaces": ("status.phase",),
    "replicasets": ("status.replicas",),
    "jobs": ("status.successful",),
}
# Event "source" is indexed by the server as source.component.
_FIELD_ALIASES = {"source": "source.component"}


@dataclass(frozen=True, slots=True)
class FieldTerm:
    path: tuple[str, ...]
    value: str
    negate: bool

    def matches(self, obj: Obj) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


def field_value(obj: Obj, path: tuple[str, ...]) -> str:
    current: Any = obj
    for part in path:
        current = current.get(part) if isinstance(current, dict) else None
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    return str(current)


_UNESCAPED_COMMA = re.compile(r"(?<!\\),")
_FIELD_TERM = re.compile(r"(.*?)(!=|==|=)(.*)")


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", r"\1", value)


def parse_field_selector(text: str, plural: str) -> list[FieldTerm]:
    if not text.strip():
        return []
    allowed = _COMMON_FIELDS + _KIND_FIELDS.get(plural, ())
    terms = []
    for raw in _UNESCAPED_COMMA.split(text):
        match = _FIELD_TERM.fullmatch(raw.strip())
        if match is None:
            raise bad_request(f"invalid selector: '{text}'; can't understand '{raw}'")
        field, op, value = match.group(1).strip(), match.group(2), _unescape(match.group(3))
        if field not in allowed:
            raise bad_request(f"field label not supported: {field}")
        path = tuple(_FIELD_ALIASES.get(field, field).split("."))
        terms.append(FieldTerm(path, value, negate=op == "!="))
    return terms


def build_predicate(
    namespace: str | None, label_selector: str, field_selector: str, plural: str
) -> Predicate:
    """Combine the namespace scope and both selectors; raises ApiError on bad syntax."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector, plural)

    def predicate(obj: Obj) -> bool:
        meta = obj.get("metadata", {})
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        return labels_match(labels, obj) and all(term.matches(obj) for term in fields)

    return predicate
