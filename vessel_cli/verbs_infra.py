"""The grammar of `vessel backend|storageclass|volume|volumesnapshot|cluster|activity|
token|events` and of `operation list|cancel`. Verbs name their function as
"module:function", imported only when the verb runs."""

from __future__ import annotations

from datetime import datetime

from vessel_cli.options import ROLES, Parsers, paged, parse_ttl, verbs


def _backend(resources: Parsers) -> None:
    backend = verbs(resources, "backend", "storage backends and pools (changes: admin only)")
    p = backend.add_parser("list", help="backends with pools, capacity and free space")
    p.add_argument("--cluster", default="", help="only this cluster")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:backend_list")
    p = backend.add_parser("get")
    p.add_argument("name")
    p.add_argument("--cluster", required=True)
    p.set_defaults(run="vessel_cli.infra:backend_get")
    for verb in ("add", "update"):
        p = backend.add_parser(verb, help=f"{verb} a backend from a YAML file (as in the settings)")
        p.add_argument("-f", "--file", required=True, help="YAML backend configuration; - stdin")
        p.add_argument("--cluster", required=True)
        p.add_argument("--request-id", default="", help="idempotency key")
        p.set_defaults(run="vessel_cli.infra:backend_add")
    p = backend.add_parser("remove", help="remove a backend holding no volumes")
    p.add_argument("name")
    p.add_argument("--cluster", required=True)
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run="vessel_cli.infra:backend_remove")


def _storage(resources: Parsers) -> None:
    classes = verbs(resources, "storageclass", "the clusters' StorageClasses")
    p = classes.add_parser("list")
    p.add_argument("--cluster", default="", help="only this cluster")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:storageclass_list")
    volume = verbs(resources, "volume", "volumes Vessel provisioned")
    p = volume.add_parser("list")
    for flag in ("--cluster", "--namespace", "--backend", "--state"):
        p.add_argument(flag, default="")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:volume_list")
    p = volume.add_parser("get")
    p.add_argument("id", help="volume id")
    p.add_argument("--cluster", required=True)
    p.set_defaults(run="vessel_cli.infra:volume_get")
    snapshots = verbs(resources, "volumesnapshot", "snapshots of Vessel volumes")
    p = snapshots.add_parser("list")
    for flag in ("--cluster", "--namespace", "--volume"):
        p.add_argument(flag, default="")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:volumesnapshot_list")


def _cluster(resources: Parsers) -> None:
    cluster = verbs(resources, "cluster", "managed clusters (changes: admin only)")
    p = cluster.add_parser("list")
    p.add_argument("--state", default="", help="Available, Unreachable, Connecting")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:cluster_list")
    p = cluster.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.infra:cluster_get")
    p = cluster.add_parser("register", help="register a cluster with a kubeconfig")
    p.add_argument("id", help="cluster id (a DNS label)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--kubeconfig", help="local kubeconfig file, sent inline")
    source.add_argument("--kubeconfig-path", default="", help="a path discovery itself reads")
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run="vessel_cli.infra:cluster_register")
    p = cluster.add_parser("remove", help="stop managing a cluster")
    p.add_argument("id")
    p.add_argument("--request-id", default="", help="idempotency key")
    p.set_defaults(run="vessel_cli.infra:cluster_remove")
    p = cluster.add_parser(
        "join-token", help="issue a one-time token with which a cluster's leaf NATS joins"
    )
    p.add_argument("id", help="the name the cluster joins as (a DNS label)")
    p.add_argument(
        "--ttl", type=int, default=3600, help="seconds it may first be used (default 3600)"
    )
    p.set_defaults(run="vessel_cli.infra:cluster_join_token")


def _token(resources: Parsers) -> None:
    token = verbs(resources, "token", "API tokens (admin only)")
    p = token.add_parser("create", help="issue a token; prints its secret once")
    p.add_argument("name", help="token name (a DNS label); recorded as requested_by")
    p.add_argument("--role", choices=ROLES, required=True)
    p.add_argument(
        "--cluster", action="append", default=[], help="scope to this cluster (repeatable)"
    )
    p.add_argument(
        "--namespace", action="append", default=[], help="scope to this namespace (repeatable)"
    )
    p.add_argument(
        "--ttl", type=parse_ttl, default=0, help="lifetime: 30d, 12h, 90m, 45s (default never)"
    )
    p.set_defaults(run="vessel_cli.tokens:token_create")
    p = token.add_parser("list", help="tokens, without secrets")
    p.set_defaults(run="vessel_cli.tokens:token_list")
    p = token.add_parser("revoke", help="revoke a token at once")
    p.add_argument("name")
    p.set_defaults(run="vessel_cli.tokens:token_revoke")


def _events(resources: Parsers) -> None:
    events = verbs(resources, "events", "Vessel's events, within your token's scope")
    p = events.add_parser("tail", help="print events as they happen, or replay from a time")
    p.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only types starting with this, e.g. io.vessel.protection (repeatable)",
    )
    p.add_argument("--since", type=datetime.fromisoformat, help="replay from this ISO time")
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    p.set_defaults(run="vessel_cli.events:tail", streams=True)


def add_parsers(resources: Parsers, operation: Parsers) -> None:
    """The infrastructure resources, tokens, events, and `list`/`cancel` on the existing
    `operation` verbs."""
    _backend(resources)
    _storage(resources)
    _cluster(resources)
    p = operation.add_parser("list", help="operations, newest first")
    p.add_argument("--kind", default="", help="backup, restore, snapshot, ...")
    p.add_argument("--phase", default="", help="New, InProgress, Completed, Failed, Canceled...")
    p.add_argument("--app", default="", help="app id")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:operation_list")
    p = operation.add_parser("cancel", help="cancel a running operation")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.infra:operation_cancel")
    activity = verbs(resources, "activity", "who did what, newest first")
    p = activity.add_parser("list")
    p.add_argument("--identity", default="", help="only this caller (token name)")
    p.add_argument("--action", default="", help="only this action, e.g. backup, backend.add")
    paged(p)
    p.set_defaults(run="vessel_cli.infra:activity_list")
    _token(resources)
    _events(resources)
