"""The rig's NATS laid out as a fleet's (docs/design/0007-hub-and-agents.md): a hub with
JetStream, and per cluster a leaf node without it that dials out to the hub.

Each service is its own user with the permissions generated from the subject table, on the
hub and, narrowed to the cluster, on every leaf; each cluster's leaf connection is a user
of the hub whose permissions carry only what that cluster's agents may say about it.
Tests and tools that connect to the hub without credentials are its administrator. With
the container servers (`VESSEL_TEST_CONTAINERS=1`) only the hub runs and every service
connects to it.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vessel.contracts import permissions
from vessel_dev.rig.processes import NatsServer, free_port, wait_until
from vessel_dev.rig.servers import Nats, new_nats

DOMAIN = "hub"
"""The hub's JetStream domain: services on a leaf node reach JetStream through it."""


def _token() -> str:
    return secrets.token_urlsafe(18)


@dataclass
class NatsTopology:
    workdir: Path
    clusters: tuple[str, ...]
    hub: Nats = field(init=False)
    leaves: dict[str, NatsServer] = field(default_factory=dict)
    passwords: dict[str, str] = field(default_factory=dict)
    """Each service's NATS password, by service."""
    leaf_passwords: dict[str, str] = field(default_factory=dict)
    """Each cluster's leaf connection's password at the hub, by cluster."""
    leaf_port: int = 0
    """The hub's port for leaf connections."""

    def start(self) -> None:
        self.passwords = {s: _token() for s in permissions.SERVICES}
        self.hub = new_nats(self.workdir)
        local = isinstance(self.hub, NatsServer)
        self.leaf_port, self.leaf_passwords = free_port(), {c: _token() for c in self.clusters}
        admin = {"user": "admin", "password": _token()}
        leaves = self.clusters if local else ()
        self.hub.config = permissions.authorization((admin,), leaves=leaves)
        self.hub.config += "no_auth_user: admin\n"
        if local:
            self.hub.config += f'leafnodes {{ listen: "127.0.0.1:{self.leaf_port}" }}\n'
            self.hub.config += f"jetstream {{ domain: {DOMAIN} }}\n"
        self.hub.environ = permissions.server_environ(self.passwords)
        self.hub.environ |= permissions.leaf_environ(self.leaf_passwords)
        self.hub.start()
        if not local:
            return
        for cluster in self.clusters:
            remote = self.remote(cluster)
            leaf = NatsServer(
                self.workdir / f"nats-{cluster}",
                config=permissions.authorization(cluster=cluster)
                + f"leafnodes {{ remotes = [ {{ url: {json.dumps(remote)} }} ] }}\n",
                environ=permissions.server_environ(self.passwords),
                jetstream=False,
                name=f"nats-{cluster}",
            )
            leaf.workdir.mkdir(parents=True, exist_ok=True)
            leaf.start()
            self.leaves[cluster] = leaf
        wait_until(
            lambda: self.leaf_connections() == len(self.clusters), 15, "every leaf node at the hub"
        )

    def remote(self, cluster: str) -> str:
        """The URL a cluster's leaf server dials the hub with."""
        password = self.leaf_passwords[cluster]
        return f"nats-leaf://{cluster}:{password}@127.0.0.1:{self.leaf_port}"

    def leaf_connections(self) -> int:
        with urllib.request.urlopen(f"{self.hub.monitor_url}/leafz", timeout=2) as reply:
            return int(json.load(reply).get("leafnodes", 0))

    def environ_for(self, service: str, cluster: str | None) -> dict[str, str]:
        """How a service (of `cluster`; None: a hub service) connects: its own user, to its
        cluster's leaf node when there is one, with JetStream through the hub's domain."""
        leaf = self.leaves.get(cluster) if cluster else None
        found = {
            "VESSEL_NATS_URL": leaf.url if leaf else self.hub.url,
            "VESSEL_NATS_USER": service,
            "VESSEL_NATS_PASSWORD": self.passwords[service],
        }
        return found | ({"VESSEL_NATS_JETSTREAM_DOMAIN": DOMAIN} if leaf else {})

    def stop(self) -> None:
        for leaf in self.leaves.values():
            leaf.stop()
        if hasattr(self, "hub"):
            self.hub.stop()
