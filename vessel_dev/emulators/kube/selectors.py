"""Label and field selectors with the syntax and matching rules of apimachinery.

Label selectors are the kernel's (`vessel.kube.selectors`): equality (``=``, ``==``,
``!=``), set (``in``, ``notin``), existence (``key``, ``!key``) and numeric (``>``,
``<``) requirements joined by commas; a selector that does not parse is a 400 naming the
term. Field selectors support ``=``, ``==`` and ``!=`` on the per-kind field set the real
server indexes; any other field is rejected with 400, as the real server does.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vessel.kube import selectors
from vessel.kube.objects import KubeObject, labels_of
from vessel.kube.selectors import Requirement, SelectorError
from vessel_dev.emulators.kube.errors import bad_request

Predicate = Callable[[KubeObject], bool]

_SET_VALUES = re.compile(r"\([^()]*\)")


def parse_label_selector(text: str) -> list[Requirement]:
    """The requirements of `?labelSelector=`; a term that does not parse is a 400. Unlike
    the kernel's parse, which skips them, an empty term (`a,` or `a,,b`) is refused too,
    as apimachinery refuses it."""
    try:
        found = list(selectors.parse(text))
    except SelectorError as exc:
        raise bad_request(str(exc)) from None
    if text.strip() and any(not t.strip() for t in _SET_VALUES.sub("()", text).split(",")):
        raise bad_request("unable to parse requirement: found '', expected a selector term")
    return found


def labels_match(requirements: list[Requirement], obj: KubeObject) -> bool:
    return selectors.matches(requirements, labels_of(obj))


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

    def matches(self, obj: KubeObject) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


def field_value(obj: KubeObject, path: tuple[str, ...]) -> str:
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

    def predicate(obj: KubeObject) -> bool:
        meta = obj.get("metadata", {})
        if namespace is not None and meta.get("namespace") != namespace:
            return False
        return labels_match(labels, obj) and all(term.matches(obj) for term in fields)

    return predicate
