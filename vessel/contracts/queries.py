"""Core NATS request/reply subjects (not stored): the queries services answer, each served
by a queue group, and the direct-transfer sessions between movers. Events and commands
are in `vessel.contracts.subjects`."""

from __future__ import annotations

QUERY_SUBJECTS = "vessel.query.>"
"""Core NATS request/reply (not stored): queries served by a service's queue group."""
QUERY_APPS = "vessel.query.discovery.apps"
"""Request `AppQuery`, reply `AppPage` (or `QueryFailed`)."""
QUERY_APP = "vessel.query.discovery.app"
"""Request `AppLookup`, reply `AppDetail` (or `QueryFailed`)."""
QUERY_CLUSTERS = "vessel.query.discovery.clusters"
"""Request `ClusterQuery`, reply `ClusterList` (or `QueryFailed`)."""
QUERY_JOIN_TOKEN = "vessel.query.discovery.join-token"
"""Request `JoinTokenRequest`, reply `JoinToken` (or `QueryFailed`): the hub's discovery
issues a token with which a cluster's leaf node joins (docs/design/0007-hub-and-agents.md)."""
QUERY_CATALOG = "vessel.query.protection.catalog"
"""Request `CatalogRead`, reply `CatalogReply` (or `QueryFailed`): backup catalog objects of
a bucket, for services that hold no bucket credentials."""
QUERY_RESTORE_PREFLIGHT = "vessel.query.protection.restore.preflight"
"""Request `RestorePreflight`, reply `PreflightResult` (or `QueryFailed`)."""
QUERY_BACKUP_FILES = "vessel.query.protection.files"
"""Request `BackupVolumeLookup`, reply `BackupVolumeFound` (or `QueryFailed`): the verified
repository snapshot of one volume of a backup."""

QUERY_MOVER_FILES = "vessel.query.mover.{cluster}.files"
"""Request `FileQuery`, reply `FileListing` or `FileBytes` (or `QueryFailed`): entries and
bytes of a repository snapshot, read by one of the cluster's movers."""

QUERY_PROVISIONER_BACKENDS = "vessel.query.provisioner.{cluster}.backends"
"""Request `BackendQuery`, reply `BackendList` (or `QueryFailed`); per cluster."""
QUERY_PROVISIONER_STORAGECLASSES = "vessel.query.provisioner.{cluster}.storageclasses"
"""Request `StorageClassQuery`, reply `StorageClassList` (or `QueryFailed`); per cluster."""
QUERY_PROVISIONER_VOLUMES = "vessel.query.provisioner.{cluster}.volumes"
"""Request `VolumeUsageQuery`, reply `VolumeUsage` (or `QueryFailed`); per cluster."""

QUERY_AGENT = "vessel.query.agent.{cluster}.{verb}"
"""Request `KubeCall`, reply `KubeAnswer`: a Kubernetes API call made by the cluster's agent
(`vessel.contracts.agent`); `verb` is the call's (`get`, `list`, ... `exec`)."""


def agent_subject(cluster: str, verb: str) -> str:
    return QUERY_AGENT.format(cluster=cluster, verb=verb)


XFER_OPEN = "vessel.xfer.{cluster}.open"
"""Core request/reply: a source mover opens a direct transfer session with the mover of
`cluster` (the destination); see docs/formats.md, "Direct transfer between movers"."""
XFER_SESSION = "vessel.xfer.{cluster}.{session}.{verb}"
"""The session's requests (`have`, `blobs`, `commit`, `close`), served while it runs."""
