"""The state catalogue: every KV bucket and every object key layout of a backup bucket.

Like the subject table for messages, this is the one place a name of stored state is
spelt. Services open KV buckets as `bus.kv(state.VOLUMES.name)` and build object keys
with the functions below; `docs/architecture.md`'s state tables are generated from it
(`python -m vessel.contracts.docs`). Each KV bucket has one owner, the only service that
writes it (`activity` is split by record, see its entry); readers only read.

A record model is named by its import path (`module:Class`), not imported: the models of
state one service alone reads live in that service, which the contracts may not import.
A test resolves every path.
"""

from __future__ import annotations

from dataclasses import dataclass

TEXT = "text: "


@dataclass(frozen=True)
class KvBucket:
    name: str
    owner: str
    keys: str
    """The key pattern, `<…>` for the variable parts."""
    record: str
    """`module:Class` of the value's model, or TEXT and a description of a value with none."""
    holds: str
    readers: tuple[str, ...] = ()


INVENTORY = KvBucket(
    "inventory",
    "discovery",
    "apps.<cluster>.<namespace>.<app>",
    "vessel.contracts.events:AppRecord",
    "apps with workloads, claims, resources",
    ("gateway", "protection"),
)
CLUSTERS = KvBucket(
    "clusters",
    "discovery",
    "<cluster>",
    "vessel.contracts.events:ClusterRecord",
    "cluster health (never kubeconfigs); a cluster here is one protection may work on",
    ("gateway", "protection"),
)
APP_DEFINITIONS = KvBucket(
    "app-definitions",
    "discovery",
    "<cluster>.<namespace>.<app>",
    "vessel.contracts.commands:DefineApp",
    "user-defined apps, and unmanaged discovered apps (`unmanaged: true`)",
)
CLUSTER_JOINS = KvBucket(
    "cluster-joins",
    "discovery",
    "<name it joins as>",  # not `<cluster>`: no cluster's agents may write here
    "services.discovery.joining:JoinRecord",
    "clusters joining by token: the token's digest and expiry, when it joined, its leaf "
    "connection (never the token)",
)
VOLUMES = KvBucket(
    "volumes",
    "provisioner",
    "<cluster>.<volume id>",
    "services.provisioner.state:VolumeRecord",
    "one record per backend volume",
    ("gateway", "protection"),
)
SNAPSHOTS = KvBucket(
    "snapshots",
    "provisioner",
    "<cluster>.<snapshot id>",
    "services.provisioner.state:SnapshotRecord",
    "one record per backend snapshot",
    ("gateway",),
)
BACKENDS = KvBucket(
    "backends",
    "provisioner",
    "<cluster>.<backend>",
    "services.provisioner.state:BackendRecord",
    "backends added, updated or removed at run time",
)
OPERATIONS = KvBucket(
    "operations",
    "protection",
    "<operation id>",
    "vessel.contracts.operations:Operation",
    "every operation with its phase, items, volumes",
    ("gateway",),
)
RESTORE_WAITS = KvBucket(
    "restore_waits",
    "protection",
    "<cluster>.<namespace>.<claim>",
    TEXT + "the id of the restore waiting",
    "claims a restore waits to see provisioned",
)
CATALOG_HEADS = KvBucket(
    "catalog_heads",
    "protection",
    "<bucket>",
    TEXT + "the newest head number seen, in decimal",
    "per bucket, the newest catalog head number seen (a rolled-back catalog is refused)",
)
PLATFORM = KvBucket(
    "platform",
    "protection",
    "install",
    TEXT + "this install's id (`vessel-<hex>`), made by the first protection to start",
    "the install's id, which names its platform export in every bucket",
)
VERIFICATIONS = KvBucket(
    "verifications",
    "protection",
    "<bucket>.<backup id>",
    "vessel.contracts.verification:VerificationRecord",
    "per backup, how its last restore verification ended",
    ("gateway",),
)
APP_SNAPSHOTS = KvBucket(
    "app_snapshots",
    "protection",
    "<snapshot id>",
    "vessel.contracts.protection:AppSnapshotRecord",
    "app snapshot records (volumes, resource archive key)",
    ("gateway",),
)
SCHEDULES = KvBucket(
    "schedules",
    "protection",
    "<schedule id>",
    "vessel.contracts.protection:ScheduleSpec",
    "schedule specs",
    ("gateway",),
)
SCHEDULE_RUNS = KvBucket(
    "schedule_runs",
    "protection",
    "runs.<schedule id>.<due epoch seconds>, cursor.<schedule id>",
    "services.protection.state.tickets:RunTicket",
    "per due time a ticket and per schedule a cursor (firing exactly once)",
)
PROTECTION_LOCKS = KvBucket(
    "protection_locks",
    "protection",
    "inplace.<app id>",
    TEXT + "the id of the in-place restore holding the lock",
    "`inplace.<app>` while an in-place restore runs",
)
HOOKS = KvBucket(
    "hooks",
    "protection",
    "<app id>.<hook id>",
    "vessel.contracts.hooks:ExecHook",
    "execution hooks",
    ("gateway",),
)
BUCKETS = KvBucket(
    "buckets",
    "protection",
    "<bucket>",
    "vessel.contracts.buckets:BucketRecord",
    "registered buckets: endpoint and Secret references, never values",
    ("gateway", "mover"),
)
ACTIVITY = KvBucket(
    "activity",
    "protection, gateway (disjoint records)",
    "<record id>",
    "vessel.contracts.activity:ActivityRecord",
    "who asked for what and how it ended",
    ("gateway",),
)
TRANSFERS = KvBucket(
    "transfers",
    "mover",
    "<cluster>.<transfer id>",
    "vessel.contracts.events:TransferResult",
    "transfer state, for idempotent redelivery",
)
CANCELED_OPERATIONS = KvBucket(
    "canceled_operations",
    "mover",
    "<cluster>.<operation id>",
    "vessel.contracts.protection:OperationCanceled",
    "operations whose transfers must stop",
)
REQUESTS = KvBucket(
    "requests",
    "gateway",
    "op.<operation id>, schedule|hook|hook-remove.<request id>, admin.<operation id>",
    "vessel.contracts.operations:Operation",
    "submitted requests (idempotency by request id): an operation until protection records "
    "it; the schedule (`ScheduleSpec`) or hook (`ExecHook`) a request put or removed; the "
    "time or target of an admin command",
)
TOKENS = KvBucket(
    "tokens",
    "gateway",
    "<token name>",
    "services.gateway.state:TokenRecord",
    "SHA-256 of API tokens with their roles and scopes",
)

KV_BUCKETS: tuple[KvBucket, ...] = (
    INVENTORY,
    CLUSTERS,
    APP_DEFINITIONS,
    CLUSTER_JOINS,
    VOLUMES,
    SNAPSHOTS,
    BACKENDS,
    OPERATIONS,
    RESTORE_WAITS,
    CATALOG_HEADS,
    VERIFICATIONS,
    PLATFORM,
    APP_SNAPSHOTS,
    SCHEDULES,
    SCHEDULE_RUNS,
    PROTECTION_LOCKS,
    HOOKS,
    BUCKETS,
    ACTIVITY,
    TRANSFERS,
    CANCELED_OPERATIONS,
    REQUESTS,
    TOKENS,
)


# Object keys in a backup bucket (docs/formats.md). The repository's own layout
# (`keys/`, `data/`, `index/`, `snapshots/` under its prefix) belongs to the mover.
@dataclass(frozen=True)
class ObjectLayout:
    pattern: str
    owner: str
    holds: str
    readers: tuple[str, ...] = ()


BACKUPS_PREFIX = "backups/"
SNAPSHOTS_PREFIX = "snapshots/"
BACKUP_LISTING = "backup.json"
BACKUP_RECORD = "backup.sealed"
RESOURCES = "resources.sealed"
CATALOG_HEAD_KEY = "catalog/head.sealed"
PLATFORM_PREFIX = "catalog/platform/"

OBJECT_LAYOUTS: tuple[ObjectLayout, ...] = (
    ObjectLayout(
        f"{BACKUPS_PREFIX}<backup id>/{BACKUP_LISTING}",
        "protection",
        "the listing entry, unsealed, written last: a backup without it is not listed",
        ("gateway",),
    ),
    ObjectLayout(
        f"{BACKUPS_PREFIX}<backup id>/{BACKUP_RECORD}",
        "protection",
        "the sealed backup record (volumes, snapshots, digests)",
    ),
    ObjectLayout(
        f"{BACKUPS_PREFIX}<backup id>/{RESOURCES}",
        "protection",
        "the sealed archive of the app's Kubernetes resources",
    ),
    ObjectLayout(
        f"{SNAPSHOTS_PREFIX}<snapshot id>/{RESOURCES}",
        "protection",
        "an app snapshot's sealed resource archive",
    ),
    ObjectLayout(
        CATALOG_HEAD_KEY,
        "protection",
        "the sealed catalog head number (a rolled-back catalog is refused)",
    ),
    ObjectLayout(
        f"{PLATFORM_PREFIX}<install id>.sealed",
        "protection",
        "the sealed export of one install's policies (vessel.platform/1), rewritten",
    ),
)


def platform_key(install: str) -> str:
    return f"{PLATFORM_PREFIX}{install}.sealed"


def platform_install(key: str) -> str | None:
    """The install id of a platform export's key, else None."""
    name = key.removeprefix(PLATFORM_PREFIX)
    if name == key or "/" in name or not name.endswith(".sealed"):
        return None
    return name.removesuffix(".sealed") or None


def backup_prefix(backup_id: str) -> str:
    return f"{BACKUPS_PREFIX}{backup_id}"


def backup_key(backup_id: str, name: str) -> str:
    """`name` (BACKUP_LISTING, BACKUP_RECORD or RESOURCES) of a backup."""
    return f"{backup_prefix(backup_id)}/{name}"


def snapshot_resources_key(snapshot_id: str) -> str:
    return f"{SNAPSHOTS_PREFIX}{snapshot_id}/{RESOURCES}"


def listed_backup_id(key: str) -> str | None:
    """The backup id of a key that is a backup's listing entry, else None."""
    parts = key.split("/")
    if len(parts) == 3 and f"{parts[0]}/" == BACKUPS_PREFIX and parts[2] == BACKUP_LISTING:
        return parts[1] or None
    return None
