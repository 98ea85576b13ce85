"""Platform catalog DR: protection keeps its policies in every bucket, sealed, so a fresh
Vessel recovers them from one bucket (`vessel platform recover --bucket B`).

Each install (one NATS and its KV state) has an id, and its export is
`catalog/platform/<install id>.sealed` (role `platform`, owner the install id), so a fresh
install pointed at the bucket never overwrites the export of the one it recovers. It
holds the schedules (verify schedules included), hooks, user-defined apps and unmanage
decisions, and registered buckets as references to Secret keys (never their values). API
tokens are not exported: a recovered platform's admin issues them again. Recovery
replays each policy as its ordinary command, so each is validated as when it was first
made, a schedule starts its cursor at the recovery (no run before it is caught up), and
recovering twice changes nothing more.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from vessel.contracts.buckets import BucketSpec
from vessel.contracts.commands import DefineApp
from vessel.contracts.hooks import ExecHook
from vessel.contracts.models import Identifier, Payload
from vessel.contracts.protection import ScheduleSpec


class PlatformExport(BaseModel):
    """What the seal holds; unknown fields are ignored, so a newer writer stays readable."""

    model_config = ConfigDict(extra="ignore")
    format: Literal["vessel.platform/1"] = "vessel.platform/1"
    exported_at: datetime
    schedules: list[ScheduleSpec] = Field(default_factory=list)
    hooks: list[ExecHook] = Field(default_factory=list)
    apps: list[DefineApp] = Field(default_factory=list)
    buckets: list[BucketSpec] = Field(default_factory=list)

    def counts(self) -> str:
        return (
            f"{len(self.schedules)} schedules, {len(self.hooks)} hooks, {len(self.apps)} app "
            f"definitions, {len(self.buckets)} registered buckets"
        )


class RecoverPlatform(Payload):
    """Replay the policies of a bucket's platform export on this Vessel: the export of
    install `from_install`, else the most recent one of another install."""

    operation_id: Identifier
    bucket: Identifier
    from_install: Identifier | None = None
    requested_by: str = "anonymous"


class PlatformRecovered(Payload):
    operation_id: Identifier
    bucket: Identifier
    from_install: str = ""
    exported_at: datetime | None = None
    message: str = ""
