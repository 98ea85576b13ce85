"""Discovery's one shared context: what its command handlers, queries and watches share.

The clusters it watches (each with the apps it published), its KV stores, where the
kubeconfigs of registered clusters are kept, and how every cluster is watched. The
handlers (`registry`, `queries`) change and read it; nothing else holds state.
"""

from __future__ import annotations

from services.discovery.cluster import Tuning, WatchedCluster
from services.discovery.credentials import CredentialStore
from services.discovery.joining import Joins
from services.discovery.publish import AppPublisher
from services.discovery.state import BucketNames, Stores
from vessel.bus.nats_port import Bus
from vessel.config import VesselSettings
from vessel.contracts.events import AppRecord, ClusterRecord


class DiscoveryContext:
    def __init__(
        self,
        bus: Bus,
        settings: VesselSettings,
        stores: Stores,
        *,
        tuning: Tuning | None = None,
        durable: str = "discovery",
    ) -> None:
        self.bus, self.settings, self.stores = bus, settings, stores
        self.tuning = tuning or Tuning()
        self.durable = durable
        """The command consumer's durable name; the query responders' queue derives from it."""
        self.credentials = CredentialStore(settings.state_dir)
        self.publisher = AppPublisher(bus, stores.apps)
        self.watched: dict[str, WatchedCluster] = {}
        """Cluster id -> the cluster as discovery watches it."""
        self.joins: Joins | None = None
        """Clusters joining by token (the hub's discovery only)."""
        self.fingerprints: dict[str, str] = {}
        """Cluster id -> a digest of the kubeconfig it is watched with: an update that
        changes nothing keeps the running watches."""

    @classmethod
    async def open(
        cls,
        bus: Bus,
        settings: VesselSettings,
        *,
        tuning: Tuning | None = None,
        buckets: BucketNames | None = None,
        durable: str = "discovery",
    ) -> DiscoveryContext:
        """A context over the KV buckets `buckets` names (the catalogue's by default)."""
        stores = await Stores.open(bus, buckets or BucketNames())
        return cls(bus, settings, stores, tuning=tuning, durable=durable)

    def apps(self) -> dict[str, AppRecord]:
        """Every app published, by id, over all clusters."""
        return {k: r for c in self.watched.values() for k, r in c.published.items()}

    async def knows(self, cluster: str) -> bool:
        """Whether `cluster` is configured, watched here or reported by its own agent."""
        configured = any(c.id == cluster for c in self.settings.clusters)
        return (
            configured
            or cluster in self.watched
            or await self.stores.clusters.get(cluster) is not None
        )

    def cluster_records(self) -> list[ClusterRecord]:
        return sorted((c.record or c.current() for c in self.watched.values()), key=lambda r: r.id)
