"""Storage pools: named slices of a backend with attributes, labels and a capacity.

Pools of one backend share its filesystem (Trident's virtual pools): a pool's free space is
the smaller of what its own capacity leaves and what the backend has free. A backend
configured without pools has one, `default`, whose attributes come from its capabilities.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from services.provisioner.adapters.base import StorageBackend
from vessel.config import BackendConfig, ConfigError, PoolConfig

DEFAULT_POOL = "default"


@dataclass(frozen=True)
class Pool:
    backend: str
    name: str
    attributes: dict[str, str] = field(default_factory=dict)
    """Every attribute as a string, as StorageClass parameters spell them."""
    labels: dict[str, str] = field(default_factory=dict)
    capacity_bytes: int | None = None
    low_capacity_percent: float = 10.0

    @property
    def id(self) -> str:
        return f"{self.backend}:{self.name}"


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def build_pools(
    config: BackendConfig, backend_type: str, capabilities: Iterable[str]
) -> list[Pool]:
    """The pools of one backend, checked against what the backend can do."""
    caps = frozenset(capabilities)
    configured = config.pools or [PoolConfig(name=DEFAULT_POOL)]
    return [_pool(config.name, backend_type, caps, p, config.capacity_bytes) for p in configured]


def default_pools(backends: Iterable[StorageBackend]) -> list[Pool]:
    """One `default` pool per backend, for backends built without a configuration."""
    return [
        _pool(b.name, b.type, b.capabilities, PoolConfig(name=DEFAULT_POOL), None) for b in backends
    ]


def _pool(
    backend: str,
    backend_type: str,
    caps: frozenset[str],
    pool: PoolConfig,
    backend_capacity: int | None,
) -> Pool:
    where = f"backend {backend} pool {pool.name}"
    given = pool.attributes.model_dump(exclude_none=True)
    for capability in ("snapshots", "clones", "compression"):
        if given.get(capability) and capability not in caps:
            raise ConfigError(
                f"{where}: attribute {capability}: true, but the {backend_type} backend "
                f"has no {capability!r} capability"
            )
    if given.get("provisioningType") == "thick":
        raise ConfigError(
            f"{where}: provisioningType thick is not offered: {backend_type} volumes are "
            "thin (space is used as it is written)"
        )
    if (
        pool.capacity_bytes is not None
        and backend_capacity is not None
        and pool.capacity_bytes > backend_capacity
    ):
        raise ConfigError(
            f"{where}: capacity_bytes {pool.capacity_bytes} exceeds the backend's "
            f"capacity_bytes {backend_capacity}"
        )
    attributes = {
        "backendType": backend_type,
        "provisioningType": "thin",
        "snapshots": _text("snapshots" in caps),
        "clones": _text("clones" in caps),
        "encryption": "false",
        "compression": "false",
    }
    attributes.update({k: _text(v) for k, v in given.items()})
    return Pool(
        backend,
        pool.name,
        attributes,
        dict(pool.labels),
        pool.capacity_bytes,
        pool.low_capacity_percent,
    )


def check_backend_names(configs: Iterable[BackendConfig], cluster: str) -> None:
    names = [c.name for c in configs]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"cluster {cluster}: duplicate backend name {', '.join(dupes)}")
