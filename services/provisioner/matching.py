"""Which pools may hold a StorageClass's volumes, and which one gets a claim (as Trident).

Pure. The candidate pools are those offering every required attribute and matching the
label `selector`, narrowed to `storagePools` when given; `additionalStoragePools` adds
pools whatever their attributes; `excludeStoragePools` removes pools last. Pool lists are
`backend:pool,pool;backend:pool` with each name a full-match regex. The `selector` is
label requirements joined by `;` (Trident's syntax), parsed by `vessel.kube.selectors`.
Among candidates the pool with the most free space that can hold the claim wins. Failures
name what no pool met.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from services.provisioner.pools import Pool
from vessel.kube import selectors

ATTRIBUTES: dict[str, tuple[str, ...] | None] = {
    "media": ("hdd", "ssd", "nvme", "hybrid"),
    "provisioningType": ("thin", "thick"),
    "backendType": ("btrfs", "dir"),
    "snapshots": ("true", "false"),
    "clones": ("true", "false"),
    "encryption": ("true", "false"),
    "compression": ("true", "false"),
    "iopsClass": None,
}
POOL_LISTS = ("storagePools", "additionalStoragePools", "excludeStoragePools")
AUTOGROW = ("autoGrowThresholdPercent", "autoGrowStep", "autoGrowMaxSize")
KNOWN_PARAMETERS = (*ATTRIBUTES, "selector", *POOL_LISTS, *AUTOGROW)
SELECTOR_FORMS = "'key=value', 'key!=value', 'key in (a,b)', 'key notin (a,b)', 'key' or '!key'"


class ParameterError(ValueError):
    """A StorageClass parameter is malformed; the message names it."""


class NoMatch(Exception):
    """No pool meets the class's requirements; the message names the unmet ones."""


class NoCapacity(Exception):
    """Pools match, but none has room for the claim."""


@dataclass(frozen=True)
class PoolList:
    text: str
    entries: tuple[tuple[re.Pattern[str], re.Pattern[str]], ...]

    def matches(self, pool: Pool) -> bool:
        return any(b.fullmatch(pool.backend) and p.fullmatch(pool.name) for b, p in self.entries)


@dataclass(frozen=True)
class SelectorTerm:
    """One term of a class's `selector`, shown as it was written in explanations: a set
    form keeps its parentheses (`d notin (z)`), where the kernel shows `d!=z`."""

    requirement: selectors.Requirement
    set_form: bool = False

    def matches(self, labels: Mapping[str, str]) -> bool:
        return self.requirement.matches(labels)

    def __str__(self) -> str:
        req = self.requirement
        if self.set_form:
            return f"{req.key} {req.op} ({','.join(req.values)})"
        return str(req)


@dataclass(frozen=True)
class Requirements:
    attributes: dict[str, str]
    selector: tuple[SelectorTerm, ...] = ()
    storage_pools: PoolList | None = None
    additional: PoolList | None = None
    exclude: PoolList | None = None


def parse_pool_list(name: str, text: str) -> PoolList:
    entries = []
    for part in (p.strip() for p in text.split(";")):
        if not part:
            continue
        backend, sep, pools = part.partition(":")
        if not sep or not backend.strip() or not pools.strip():
            raise ParameterError(f"{name}: entry {part!r} is not 'backend:pool[,pool...]'")
        for pool in pools.split(","):
            try:
                entries.append((re.compile(backend.strip()), re.compile(pool.strip())))
            except re.error as exc:
                raise ParameterError(f"{name}: {part!r} is not a valid regex: {exc}") from exc
    if not entries:
        raise ParameterError(f"{name}: empty pool list")
    return PoolList(text, tuple(entries))


def parse_selector(text: str) -> tuple[SelectorTerm, ...]:
    """The `;`-joined terms of a `selector`, each parsed by the kernel; ParameterError names
    the first one not in SELECTOR_FORMS (the kernel's numeric `>` and `<` included).

    Split here rather than by `selectors.parse(text, separator=";")`: each term's written
    form decides how explanations show it (see SelectorTerm)."""
    found = []
    for term in (t.strip() for t in text.split(";") if t.strip()):
        try:
            requirement = selectors.parse_requirement(term)
        except selectors.SelectorError as exc:
            raise ParameterError(f"selector: {term!r} is not {SELECTOR_FORMS}") from exc
        if requirement.op in (">", "<"):
            raise ParameterError(f"selector: {term!r} is not {SELECTOR_FORMS}")
        set_form = requirement.op in ("in", "notin") and "(" in term
        found.append(SelectorTerm(requirement, set_form))
    return tuple(found)


def parse_requirements(parameters: Mapping[str, str] | None) -> Requirements:
    params = {str(k): str(v) for k, v in (parameters or {}).items()}
    unknown = sorted(k for k in params if k not in KNOWN_PARAMETERS and "/" not in k)
    if unknown:
        raise ParameterError(
            f"unknown parameter {', '.join(unknown)} (known: {', '.join(KNOWN_PARAMETERS)})"
        )
    attributes = {}
    for name, allowed in ATTRIBUTES.items():
        if name not in params:
            continue
        value = params[name].strip()
        if allowed is not None:
            value = value.lower()
            if value not in allowed:
                raise ParameterError(f"{name}: {params[name]!r} is not one of {', '.join(allowed)}")
        attributes[name] = value
    lists = {n: parse_pool_list(n, params[n]) for n in POOL_LISTS if n in params}
    return Requirements(
        attributes,
        parse_selector(params.get("selector", "")),
        lists.get("storagePools"),
        lists.get("additionalStoragePools"),
        lists.get("excludeStoragePools"),
    )


def _meets(pool: Pool, req: Requirements) -> bool:
    return (
        all(pool.attributes.get(k) == v for k, v in req.attributes.items())
        and all(s.matches(pool.labels) for s in req.selector)
        and (req.storage_pools is None or req.storage_pools.matches(pool))
    )


def matching_pools(pools: list[Pool], req: Requirements) -> list[Pool]:
    """The candidate pools, in configuration order; `NoMatch` when there is none."""
    chosen = [
        p
        for p in pools
        if _meets(p, req) or (req.additional is not None and req.additional.matches(p))
    ]
    kept = [p for p in chosen if req.exclude is None or not req.exclude.matches(p)]
    if not kept:
        raise NoMatch(explain(pools, req, excluded=[p.id for p in chosen]))
    return kept


def explain(pools: list[Pool], req: Requirements, excluded: list[str] | None = None) -> str:
    if not pools:
        return "no storage pool is configured"
    if excluded:
        text = req.exclude.text if req.exclude else ""
        return f"excludeStoragePools {text!r} removed every matching pool ({', '.join(excluded)})"
    unmet = []
    for name, wanted in req.attributes.items():
        if not any(p.attributes.get(name) == wanted for p in pools):
            offered = sorted({f"{p.attributes.get(name, 'unset')} on {p.id}" for p in pools})
            unmet.append(f"{name}={wanted} (pools offer: {', '.join(offered)})")
    for requirement in req.selector:
        if not any(requirement.matches(p.labels) for p in pools):
            unmet.append(f"selector {requirement} (no pool's labels match)")
    if req.storage_pools is not None and not any(req.storage_pools.matches(p) for p in pools):
        unmet.append(f"storagePools {req.storage_pools.text!r} (names no configured pool)")
    if unmet:
        return "no storage pool meets " + "; ".join(unmet)
    demands = [f"{k}={v}" for k, v in req.attributes.items()]
    demands += [f"selector {s}" for s in req.selector]
    if req.storage_pools is not None:
        demands.append(f"storagePools {req.storage_pools.text!r}")
    return f"no single storage pool meets all of {', '.join(demands)}"


def place(candidates: list[Pool], free: Mapping[str, int], size_bytes: int) -> Pool:
    """The candidate with the most free bytes that can hold `size_bytes` (first on ties)."""
    fitting = [p for p in candidates if free.get(p.id, 0) >= size_bytes]
    if not fitting:
        best = max(candidates, key=lambda p: free.get(p.id, 0))
        raise NoCapacity(
            f"no matching pool can hold {size_bytes} bytes (most free: {free.get(best.id, 0)} "
            f"bytes in {best.id})"
        )
    return max(fitting, key=lambda p: free.get(p.id, 0))
