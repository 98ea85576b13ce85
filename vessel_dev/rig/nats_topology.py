"""The rig's NATS laid out as a fleet's (docs/design/0007-hub-and-agents.md): a hub with
JetStream, and per cluster a leaf node without it that dials out to the hub.

Each service is its own user with the permissions generated from the subject table, on the
hub and, narrowed to the cluster, on every leaf; each cluster's leaf connection is a user
of the hub whose permissions carry only what that cluster's agents may say about it.
Tests and tools that connect to the hub without credentials are its administrator. A
cluster may also join at run time (`join`): its leaf dials the hub with a join token, which
the hub's NATS has its discovery check (the authorization callout). With
the container servers (`VESSEL_TEST_CONTAINERS=1`) only the hub runs and every service
connects to it.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from vessel.bus import nats_auth
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
    callout_seed: str = ""
    """The account nkey seed the hub's discovery answers the hub's callout with."""
    system_password: str = ""

    def start(self) -> None:
        self.passwords = {s: _token() for s in permissions.SERVICES}
        self.hub = new_nats(self.workdir)
        local = isinstance(self.hub, NatsServer)
        self.leaf_port, self.leaf_passwords = free_port(), {c: _token() for c in self.clusters}
        admin = {"user": "admin", "password": _token()}
        leaves = self.clusters if local else ()
        issuer = None
        if local:
            self.callout_seed, issuer = nats_auth.new_issuer()
            self.system_password = _token()
        self.hub.config = permissions.authorization((admin,), leaves=leaves, callout_issuer=issuer)
        self.hub.config += "no_auth_user: admin\n"
        if local:
            self.hub.config += f'leafnodes {{ listen: "127.0.0.1:{self.leaf_port}" }}\n'
            self.hub.config += f"jetstream {{ domain: {DOMAIN} }}\n"
        self.hub.environ = permissions.server_environ(self.passwords)
        self.hub.environ |= permissions.leaf_environ(self.leaf_passwords)
        if self.system_password:
            self.hub.environ |= permissions.server_environ({"system": self.system_password})
        self.hub.start()
        if not local:
            return
        for cluster in self.clusters:
            self.leaves[cluster] = self._leaf(cluster, self.leaf_passwords[cluster])
        wait_until(
            lambda: self.leaf_connections() == len(self.clusters), 15, "every leaf node at the hub"
        )

    def join(self, cluster: str, token: str) -> NatsServer:
        """Start `cluster`'s leaf node dialling the hub with a join token (not waited for:
        the hub may refuse it)."""
        self.leaves[cluster] = self._leaf(cluster, token)
        return self.leaves[cluster]

    def _leaf(self, cluster: str, password: str) -> NatsServer:
        remote = self.remote(cluster, password)
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
        return leaf

    def remote(self, cluster: str, password: str | None = None) -> str:
        """The URL a cluster's leaf server dials the hub with (its configured password, or
        `password`)."""
        password = password or self.leaf_passwords[cluster]
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
        if service == "discovery" and cluster is None and self.callout_seed:
            found["VESSEL_NATS_CALLOUT_SEED"] = self.callout_seed
            found["VESSEL_NATS_SYSTEM_PASSWORD"] = self.system_password
        return found | ({"VESSEL_NATS_JETSTREAM_DOMAIN": DOMAIN} if leaf else {})

    def stop(self) -> None:
        for leaf in self.leaves.values():
            leaf.stop()
        if hasattr(self, "hub"):
            self.hub.stop()
