"""What each service may say on NATS, generated from the subject table and the state
catalogue, and the `nats-server` authorization block that enforces it.

A service may publish:
- the events of its own domain (`vessel.evt.<service>.>`) and dead letters
  (`vessel.evt.system.>`, which any consumer may produce);
- the commands `SENDS` lists for it (commands it consumes itself are only received);
- the queries `ASKS` lists for it, and replies to whoever asked it (`_INBOX.>`);
- writes to the KV buckets the state catalogue says it owns (`$KV.<bucket>.>`);
- the JetStream API, acknowledgements and flow control (`$JS.API.>`, `$JS.<domain>.API.>`
  from a leaf node, `$JS.ACK.>`, `$JS.FC.>`): consumers, KV reads and stream set-up. A
  cluster's agents get less (`_agent_jetstream`): lookups, KV reads and their own durable
  consumers, never a stream change nor another consumer's messages.

It may subscribe only to inboxes (replies, pull and ordered consumers, KV watches) and to
the queries it answers. Only protection may send `mover.forget` (it destroys backup data)
and retention's deletions; the gateway sends a user's deletion request to protection after
its role check.

`python -m vessel.contracts.permissions` prints the hub's authorization block (`--leaves
A,B`: with a user per cluster for its leaf connection; `--cluster A`: the block of that
cluster's leaf server instead); passwords are taken from the server's environment
(`$VESSEL_NATS_PASSWORD_<SERVICE>`, `$VESSEL_NATS_PASSWORD_LEAF_<CLUSTER>`, each a quoted
string: nats-server parses a variable's value as configuration), so the block holds no
secret. `no_auth_user` is left to the operator (the rig uses it for its tests).
"""

from __future__ import annotations

import argparse
import json
import re
from dataclasses import dataclass
from typing import Any

from vessel.contracts import queries, state, subjects
from vessel.contracts.message import Message

SERVICES = ("provisioner", "discovery", "protection", "mover", "gateway")

SENDS: dict[str, tuple[Message, ...]] = {
    "gateway": (
        subjects.CREATE_BACKUP,
        subjects.CREATE_RESTORE,
        subjects.RESTORE_FILES,
        subjects.CREATE_VERIFICATION,
        subjects.RECOVER_PLATFORM,
        subjects.CREATE_SNAPSHOT,
        subjects.CREATE_CLONE,
        subjects.CREATE_MIGRATION,
        subjects.CANCEL_OPERATION,
        subjects.DELETE_BACKUP,
        subjects.DELETE_SNAPSHOT,
        subjects.PUT_SCHEDULE,
        subjects.REMOVE_SCHEDULE,
        subjects.PUT_HOOK,
        subjects.REMOVE_HOOK,
        subjects.PUT_BUCKET,
        subjects.REMOVE_BUCKET,
        subjects.REGISTER_CLUSTER,
        subjects.REMOVE_CLUSTER,
        subjects.DEFINE_APP,
        subjects.UNDEFINE_APP,
        subjects.ADD_BACKEND,
        subjects.UPDATE_BACKEND,
        subjects.REMOVE_BACKEND,
    ),
    "protection": (
        subjects.CREATE_VERIFICATION,
        subjects.PUT_SCHEDULE,
        subjects.PUT_HOOK,
        subjects.PUT_BUCKET,
        subjects.DEFINE_APP,
        subjects.CREATE_BACKUP,
        subjects.CREATE_RESTORE,
        subjects.CREATE_SNAPSHOT,
        subjects.DELETE_BACKUP,
        subjects.DELETE_SNAPSHOT,
        subjects.SNAPSHOT_GROUP,
        subjects.MOVE_TO_BUCKET,
        subjects.MOVE_FROM_BUCKET,
        subjects.FORGET_SNAPSHOTS,
    ),
    "mover": (),
    "provisioner": (),
    "discovery": (),
}
"""The commands each service sends to others (or to itself, as protection's scheduled
runs and retention do)."""

ASKS: dict[str, tuple[str, ...]] = {
    "gateway": (
        queries.QUERY_JOIN_TOKEN,
        queries.QUERY_CATALOG,
        queries.QUERY_RESTORE_PREFLIGHT,
        queries.QUERY_BACKUP_FILES,
        queries.QUERY_MOVER_FILES,
        queries.QUERY_PROVISIONER_BACKENDS,
        queries.QUERY_PROVISIONER_STORAGECLASSES,
        queries.QUERY_PROVISIONER_VOLUMES,
    ),
    "mover": ("vessel.xfer.>",),
    "protection": (queries.QUERY_AGENT,),
    "provisioner": (),
    "discovery": ("vessel.query.discovery.>",),
}
"""The query subjects each service asks (discovery asks its own replicas; protection
asks the cluster agents)."""

ANSWERS: dict[str, tuple[str, ...]] = {
    "gateway": (),
    "mover": ("vessel.xfer.{cluster}.>", "vessel.query.mover.{cluster}.>"),
    "protection": ("vessel.query.protection.>",),
    "provisioner": ("vessel.query.provisioner.{cluster}.>",),
    "discovery": ("vessel.query.discovery.>", "vessel.query.agent.{cluster}.>"),
}
"""The query subjects each service answers (discovery as the cluster agent too, the mover
its direct-transfer sessions)."""

HEARS: dict[str, tuple[str, ...]] = {
    "protection": (
        subjects.TRANSFER_PROGRESS.filter_subject,
        subjects.TRANSFER_PROGRESS.legacy_subject,
    ),
}
"""Events a service overhears as they pass, without a consumer (protection: transfers'
progress keeps their operations within their deadline)."""

JETSTREAM = (
    "$JS.API.>",
    "$JS.*.API.INFO",
    "$JS.*.API.STREAM.>",
    "$JS.*.API.CONSUMER.>",
    "$JS.*.API.DIRECT.>",
    "$JS.ACK.>",
    "$JS.FC.>",
)
"""The JetStream API (also through a domain, from a leaf node), acks and flow control."""

AGENT_DURABLES: dict[str, tuple[str, ...]] = {
    "mover": ("mover-{cluster}", "mover-{cluster}-cancels", "mover-{cluster}-forget"),
    "provisioner": ("provisioner-{cluster}-backends", "provisioner-{cluster}-groups"),
    "discovery": (),
}
"""The durable consumers a cluster's agents keep, named after the cluster: the only ones its
users may make, pull from and acknowledge."""


def _agent_jetstream(service: str, cluster: str) -> tuple[str, ...]:
    """The JetStream API of a cluster's agent: lookups and reads of any stream, consumers
    it makes (a KV listing or watch), and pulling from, acknowledging and deleting only the
    short-lived consumers of KV buckets and its own durable ones. No stream is made, changed,
    purged or deleted (the hub makes them), and no other durable consumer is read,
    acknowledged or deleted. (nats-server wildcards match whole tokens only, so the KV
    streams are named one by one.)"""
    api = [
        "INFO",
        "STREAM.INFO.*",
        "STREAM.MSG.GET.*",
        "DIRECT.GET.*",
        "DIRECT.GET.*.>",
        "CONSUMER.CREATE.*",
        "CONSUMER.CREATE.*.*.>",
        "CONSUMER.INFO.*.*",
    ]
    for bucket in state.KV_BUCKETS:
        api += [f"CONSUMER.MSG.NEXT.KV_{bucket.name}.*", f"CONSUMER.DELETE.KV_{bucket.name}.*"]
    acks = ["$JS.FC.>"]
    for durable in (d.format(cluster=cluster) for d in AGENT_DURABLES[service]):
        api += [f"CONSUMER.DURABLE.CREATE.*.{durable}", f"CONSUMER.MSG.NEXT.*.{durable}"]
        acks.append(f"$JS.ACK.*.{durable}.>")
    return (*(f"{p}.{a}" for a in api for p in ("$JS.API", "$JS.*.API")), *acks)


INBOXES = "_INBOX.>"
CALLOUT = "$SYS.REQ.USER.AUTH"
"""Where nats-server asks who an unknown connection is (its authorization callout)."""
CALLOUT_REPLIES = "$SYS._INBOX.>"
"""Where the answers to nats-server's callout questions go."""
ACCOUNT = "VESSEL"
"""The hub's account of every Vessel user, when clusters join by token."""
SYSTEM_USER = "system"
"""The hub's system-account user with which discovery cuts a removed cluster's leaf."""


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _wildcard(subject: str) -> str:
    """A subject pattern with its `{placeholder}` tokens as single-token wildcards."""
    return re.sub(r"\{[a-z]+\}", "*", subject)


def owned_buckets(service: str) -> tuple[state.KvBucket, ...]:
    return tuple(b for b in state.KV_BUCKETS if service in b.owner.replace(",", " ").split())


def _owned_keys(bucket: state.KvBucket, cluster: str | None) -> str | None:
    """The keys of `bucket` a service may write: all of them on the hub; in a cluster,
    those under the cluster (the catalogue's key pattern up to `<cluster>`), or none when
    the bucket's keys do not carry the cluster."""
    if cluster is None:
        return ">"
    head, found, tail = bucket.keys.partition("<cluster>")
    if not found:
        return None
    return f"{head}{cluster}" + (".>" if tail else "")


def for_service(service: str, cluster: str | None = None) -> Permissions:
    """What `service` may say on the hub, or, given `cluster`, as that cluster's agent:
    then only its cluster's events, KV keys and queries. ValueError names an unknown
    service."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}; expected one of {', '.join(SERVICES)}")
    keys = [(b.name, k) for b in owned_buckets(service) if (k := _owned_keys(b, cluster))]
    publish = [
        f"vessel.evt.{service}.{cluster}.>" if cluster else f"vessel.evt.{service}.>",
        "vessel.evt.system.>",
        *(m.filter_subject for m in SENDS[service]),
        *(_wildcard(s) for s in ASKS[service]),
        *(f"$KV.{name}.{k}" for name, k in keys),
        *(f"$JS.*.API.$KV.{name}.{k}" for name, k in keys),
        *(JETSTREAM if cluster is None else _agent_jetstream(service, cluster)),
        INBOXES,
    ]
    answers = (
        [_wildcard(s) for s in ANSWERS[service]]
        if cluster is None
        else [s.format(cluster=cluster) for s in ANSWERS[service] if "{cluster}" in s]
    )
    subscribe = [INBOXES, *answers, *(h for h in HEARS.get(service, ()) if h)]
    if service == "discovery" and cluster is None:
        subscribe.append(CALLOUT)  # the hub's discovery admits clusters joining by token
        publish.append(CALLOUT_REPLIES)
    return Permissions(tuple(dict.fromkeys(publish)), tuple(dict.fromkeys(subscribe)))


CLUSTER_AGENTS = ("provisioner", "mover", "discovery")
"""The services that run in each cluster (the node agents, and discovery as the cluster
agent) and reach the hub through the cluster's leaf node
(docs/design/0007-hub-and-agents.md)."""


def leaf_node(cluster: str) -> Permissions:
    """What a cluster's leaf connection may carry: what its agents may publish goes to the
    hub, what they may subscribe to comes into the cluster, nothing else, and nothing of
    another cluster."""
    publish = [p for s in CLUSTER_AGENTS for p in for_service(s, cluster).publish]
    subscribe = [p for s in CLUSTER_AGENTS for p in for_service(s, cluster).subscribe]
    return Permissions(tuple(dict.fromkeys(publish)), tuple(dict.fromkeys(subscribe)))


def password_variable(service: str) -> str:
    return f"VESSEL_NATS_PASSWORD_{service.upper()}"


def server_environ(passwords: dict[str, str]) -> dict[str, str]:
    """The nats-server environment for `passwords` by service. The server parses a
    variable's value as configuration, so each is given as a quoted string."""
    return {password_variable(s): json.dumps(p) for s, p in passwords.items()}


def leaf_password_variable(cluster: str) -> str:
    return f"VESSEL_NATS_PASSWORD_LEAF_{cluster.upper().replace('-', '_')}"


def leaf_environ(passwords: dict[str, str]) -> dict[str, str]:
    """The hub's environment for its leaf connections' `passwords` by cluster."""
    return {leaf_password_variable(c): json.dumps(p) for c, p in passwords.items()}


def _user(name: str, variable: str, allowed: Permissions) -> str:
    permissions = {
        "publish": {"allow": list(allowed.publish)},
        "subscribe": {"allow": list(allowed.subscribe)},
    }
    return f"    {{user: {name}, password: ${variable}, permissions: {json.dumps(permissions)}}}"


def authorization(
    extra_users: tuple[dict[str, Any], ...] = (),
    cluster: str | None = None,
    leaves: tuple[str, ...] = (),
    callout_issuer: str | None = None,
) -> str:
    """The `authorization` block of a nats-server configuration: one user per service with
    its permissions (on a cluster's leaf server: its agents, as that cluster's); on the
    hub, one user per cluster in `leaves` for that cluster's leaf connection (`leaf_node`);
    then `extra_users` (e.g. an administrator) as given.

    With `callout_issuer` (the public account nkey whose seed the hub's discovery holds),
    the hub's block instead puts these users in account `VESSEL` and asks discovery about
    every other connection: a cluster joining by token (docs/design/0007-hub-and-agents.md).
    A system-account user lets discovery cut a removed cluster's leaf connection."""
    users = [
        _user(s, password_variable(s), for_service(s, cluster))
        for s in (SERVICES if cluster is None else CLUSTER_AGENTS)
    ]
    users += [_user(c, leaf_password_variable(c), leaf_node(c)) for c in leaves]
    users += [f"    {json.dumps(user)}" for user in extra_users]
    listed = "[\n" + "\n".join(users) + "\n  ]"
    if callout_issuer is None or cluster is not None:
        return f"authorization {{\n  users = {listed}\n}}\n"
    names = [*SERVICES, *leaves, *(str(u["user"]) for u in extra_users)]
    system = f"{{user: {SYSTEM_USER}, password: ${password_variable(SYSTEM_USER)}}}"
    callout = {
        "issuer": callout_issuer,
        "account": ACCOUNT,
        "auth_users": names,
        "allowed_accounts": [ACCOUNT],
    }
    return (
        f"accounts {{\n  {ACCOUNT}: {{ jetstream: enabled, users: {listed} }}\n"
        f"  SYS: {{ users: [ {system} ] }}\n}}\nsystem_account: SYS\n"
        f"authorization {{\n  auth_callout: {json.dumps(callout)}\n}}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m vessel.contracts.permissions",
        description="Print a nats-server authorization block with Vessel's users.",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--cluster", help="for that cluster's leaf server (its agents only)")
    where.add_argument(
        "--leaves", default="", help="on the hub: the clusters (comma-separated) dialling it"
    )
    parser.add_argument(
        "--callout-issuer",
        help="on the hub: the account nkey (public) of VESSEL_NATS_CALLOUT_SEED, to let "
        "clusters join by token",
    )
    args = parser.parse_args(argv)
    leaves = tuple(c for c in args.leaves.split(",") if c)
    block = authorization(cluster=args.cluster, leaves=leaves, callout_issuer=args.callout_issuer)
    print(block, end="")


if __name__ == "__main__":
    main()
