"""Label selectors: Kubernetes `matchLabels` + `matchExpressions`, and the query filter."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from vessel.contracts.models import LabelRequirement, NamespaceSelection

Obj = dict[str, Any]


def requirement_matches(req: LabelRequirement, labels: Mapping[str, str]) -> bool:
    if req.operator == "Exists":
        return req.key in labels
    if req.operator == "DoesNotExist":
        return req.key not in labels
    if req.operator == "In":
        return labels.get(req.key) in req.values
    return labels.get(req.key) not in req.values  # NotIn: also matches a missing key


def selection_matches(selection: NamespaceSelection, obj: Obj) -> bool:
    """`obj` is in the namespace and carries the selection's labels (all of them)."""
    meta = obj.get("metadata") or {}
    if meta.get("namespace") != selection.namespace:
        return False
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in selection.match_labels.items()):
        return False
    return all(requirement_matches(r, labels) for r in selection.match_expressions)


def workload_selects(selector: Any, labels: Mapping[str, str]) -> bool:
    """A workload's `spec.selector` (a LabelSelector dict) matches `labels`. An empty or
    missing selector matches nothing, as for a Deployment."""
    if not isinstance(selector, dict):
        return False
    match_labels = selector.get("matchLabels") or {}
    expressions = selector.get("matchExpressions") or []
    if not match_labels and not expressions:
        return False
    if any(labels.get(k) != v for k, v in match_labels.items()):
        return False
    for expr in expressions:
        try:
            req = LabelRequirement(
                key=expr.get("key", ""),
                operator=expr.get("operator", ""),
                values=list(expr.get("values") or []),
            )
        except ValueError:
            return False  # an operator the API server would have refused
        if not requirement_matches(req, labels):
            return False
    return True


def parse_label_filter(text: str) -> tuple[str, str | None]:
    """`key=value` -> (key, value); `key` -> (key, None). ValueError names the problem."""
    key, sep, value = text.partition("=")
    key = key.strip()
    if not key:
        raise ValueError(f"label filter {text!r}: expected key=value or key")
    return key, (value.strip() if sep else None)
