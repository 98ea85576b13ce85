"""Request validation shared by every API: every problem is reported at once, each naming
its field (`Checker` collects them; the `require_` functions raise INVALID_ARGUMENT)."""

from __future__ import annotations

import re
from collections.abc import Collection

from services.gateway.errors import invalid
from vessel.config import ConfigError, VesselSettings
from vessel.contracts.models import APP_ID_PATTERN

IDENTIFIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
APP_ID = re.compile(APP_ID_PATTERN)
Violations = list[tuple[str, str]]
Check = tuple[str, str, str, bool]
"""(field, value, what it must be, required)."""


class Checker:
    def __init__(
        self,
        settings: VesselSettings,
        buckets: Collection[str] | None = None,
        clusters: Collection[str] | None = None,
    ) -> None:
        """`buckets`, `clusters`: every name known (configured and registered); unset: the
        settings' only."""
        self.settings, self.buckets, self.clusters = settings, buckets, clusters
        self.violations: Violations = []

    def add(self, field: str, problem: str) -> None:
        self.violations.append((field, problem))

    def pattern(
        self, field: str, value: str, regex: re.Pattern[str], what: str, required: bool = True
    ) -> None:
        if not value:
            if required:
                self.add(field, "is required")
        elif not regex.match(value):
            self.add(field, f"{value!r} is not {what}")

    def bucket(self, field: str, name: str) -> None:
        if not name:
            self.add(field, "is required")
            return
        if self.buckets is not None:
            if name not in self.buckets:
                self.add(field, f"bucket {name!r} is neither configured nor registered")
            return
        try:
            self.settings.bucket(name)
        except ConfigError as exc:
            self.add(field, str(exc))

    def cluster(self, field: str, cluster_id: str) -> None:
        if not cluster_id:
            self.add(field, "is required")
            return
        known = self.clusters
        if known is None:
            known = {c.id for c in self.settings.clusters}
        if cluster_id not in known:
            self.add(field, f"cluster {cluster_id!r} is neither configured nor registered")

    def mapping(self, field: str, mapping: dict[str, str]) -> None:
        for key, value in mapping.items():
            for part in (key, value):
                if not DNS_LABEL.match(part):
                    self.add(f"{field}[{key}]", f"{part!r} is not a namespace name (DNS label)")


def require_ids(*checks: Check) -> None:
    """Each value must be an identifier."""
    problems: Violations = []
    for field, value, what, required in checks:
        if not value:
            if required:
                problems.append((field, "is required"))
        elif not IDENTIFIER.match(value):
            problems.append((field, f"{value!r} is not {what}"))
    if problems:
        raise invalid(problems)


def require_ref(cluster: str, record_id: str) -> None:
    """A record a cluster's owner keeps: the cluster's id and the record's."""
    violations: Violations = []
    if not DNS_LABEL.match(cluster):
        violations.append(("cluster", f"{cluster!r} is not a cluster id (DNS label)"))
    if not IDENTIFIER.match(record_id):
        violations.append(("id", f"{record_id!r} is not an id"))
    if violations:
        raise invalid(violations)
