"""`MoverContext`: what every handler of one cluster's mover shares.

It is built once by `main` and handed to the inbox, which builds the handlers on it
(`Mover.on(ctx)`, `Sender.on(ctx)`, ...). Shared here because more than one handler needs
the same instance: the opened buckets (a bucket prepared for a command is the one its
transfer thread writes to; a repository handle and its derived key are kept), the
canceled operations (a cancel event stops the transfers of every kind running for it), and
the KV bucket of transfer records.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.mover.buckets import MoverBuckets
from services.mover.cancels import Cancels
from vessel.bus.nats_port import Bus, KeyValue
from vessel.config import VesselSettings


@dataclass
class MoverContext:
    settings: VesselSettings
    cluster_id: str
    """The cluster this mover serves: it takes only the commands addressed to it."""
    bus: Bus
    buckets: MoverBuckets
    """Configured and registered buckets, opened once per KV revision."""
    cancels: Cancels
    transfers: KeyValue
    """KV `transfers` (`state.TransferRecords`), written by every kind of transfer."""
