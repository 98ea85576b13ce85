"""Label selectors with the syntax and matching rules of apimachinery, in one place for
discovery (app selections, workload selectors), the provisioner (a StorageClass's pool
`selector`) and the Kubernetes emulator (`?labelSelector=`).

Text form: equality (`=`, `==`, `!=`), set (`in`, `notin`), existence (`key`, `!key`) and
numeric (`>`, `<`) requirements, joined by commas (the provisioner's StorageClass
parameter joins them by `;`, as Trident's). Object form: a `LabelSelector`'s
`matchLabels` and `matchExpressions` (`In`, `NotIn`, `Exists`, `DoesNotExist`). As in
apimachinery a missing key satisfies `!=` and `notin`, and every requirement must hold.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Op = Literal["exists", "!exists", "in", "notin", ">", "<"]
_KEY = r"[A-Za-z0-9][-A-Za-z0-9_./]*"
_VALUE = r"[-A-Za-z0-9_.]*"
_NOT_EXISTS = re.compile(rf"!\s*({_KEY})")
_EXISTS = re.compile(rf"({_KEY})")
_SET = re.compile(rf"({_KEY})\s+(in|notin)\s*\(([^()]*)\)")
_COMPARE = re.compile(rf"({_KEY})\s*(==|=|!=|>|<)\s*({_VALUE})")
_EXPRESSION_OPS: dict[str, Op] = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!exists",
}


class SelectorError(ValueError):
    """A selector that does not parse; the message names the term."""


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    op: Op
    values: tuple[str, ...] = ()

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
            return not present or value not in self.values
        return present and _numeric_compare(value, self.op, self.values[0])

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!exists":
            return f"!{self.key}"
        if self.op in (">", "<"):
            return f"{self.key}{self.op}{self.values[0]}"
        if len(self.values) == 1:
            return f"{self.key}{'=' if self.op == 'in' else '!='}{self.values[0]}"
        return f"{self.key} {self.op} ({','.join(self.values)})"


def _numeric_compare(value: str, op: str, bound: str) -> bool:
    try:
        actual, limit = int(value), int(bound)
    except ValueError:
        return False
    return actual > limit if op == ">" else actual < limit


def _split_top_level(text: str, separator: str) -> list[str]:
    """Split on `separator` outside parentheses, so `a in (x,y),b` is two terms."""
    terms, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    return terms


def parse_requirement(term: str) -> Requirement:
    term = term.strip()
    if match := _SET.fullmatch(term):
        values = tuple(v.strip() for v in match.group(3).split(",") if v.strip())
        return Requirement(match.group(1), "in" if match.group(2) == "in" else "notin", values)
    if match := _COMPARE.fullmatch(term):
        key, op, value = match.groups()
        if op in ("=", "=="):
            return Requirement(key, "in", (value,))
        if op == "!=":
            return Requirement(key, "notin", (value,))
        if not value.lstrip("-").isdigit():
            raise SelectorError(f"unable to parse requirement: {term!r}: expected an integer")
        return Requirement(key, ">" if op == ">" else "<", (value,))
    if match := _NOT_EXISTS.fullmatch(term):
        return Requirement(match.group(1), "!exists")
    if match := _EXISTS.fullmatch(term):
        return Requirement(match.group(1), "exists")
    raise SelectorError(f"unable to parse requirement: found {term!r}, expected a selector term")


def parse(text: str, separator: str = ",") -> tuple[Requirement, ...]:
    """The requirements of a selector's text form; empty text selects everything."""
    terms = [t for t in _split_top_level(text, separator) if t.strip()]
    return tuple(parse_requirement(term) for term in terms)


def from_label_selector(selector: Mapping[str, Any]) -> tuple[Requirement, ...]:
    """The requirements of a `LabelSelector` object; SelectorError names a bad expression."""
    found = [
        Requirement(str(k), "in", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        op = _EXPRESSION_OPS.get(str(expr.get("operator", "")))
        if op is None:
            raise SelectorError(f"matchExpressions: unknown operator {expr.get('operator')!r}")
        values = tuple(str(v) for v in expr.get("values") or [])
        if (op in ("in", "notin")) != bool(values):
            raise SelectorError(f"matchExpressions: {expr.get('operator')} with values {values}")
        found.append(Requirement(str(expr.get("key", "")), op, values))
    return tuple(found)


def matches(requirements: Iterable[Requirement], labels: Mapping[str, str]) -> bool:
    return all(req.matches(labels) for req in requirements)
