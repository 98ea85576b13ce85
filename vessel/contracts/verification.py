"""Restore verification: a backup is shown to restore by restoring it into a scratch
namespace, checking every file against the backup's tree and every object against its
manifest, running the app's post-restore hooks there as its probe, and deleting the copy.

A verification is an operation (`verify`) made of an ordinary restore with a derived id
(`<id>-restore`); its result is kept per backup in KV `verifications`, which retention's
`floor_verified` and the API's `Backup.verification` read.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from vessel.contracts.models import AppId, ClusterId, Identifier, Payload


class CreateVerification(Payload):
    """Verify a backup of `app_id` in `bucket`: `backup_id`, else its newest one."""

    operation_id: Identifier
    app_id: AppId
    bucket: Identifier
    backup_id: Identifier | None = None
    target_cluster: ClusterId | None = Field(None, description="Default: the app's cluster")
    schedule: Identifier | None = Field(None, description="The schedule that fired it, if any")
    requested_by: str = "anonymous"


class VerificationRecord(Payload):
    """The last verification of one backup (KV `verifications`, `<bucket>.<backup id>`)."""

    bucket: Identifier
    backup_id: Identifier
    app_id: str
    operation_id: Identifier
    outcome: Literal["Passed", "Failed"]
    verified_at: datetime
    duration_seconds: float = Field(0.0, ge=0)
    target_cluster: str = ""
    files: int = Field(0, ge=0, description="Files restored and read back against the tree")
    bytes: int = Field(0, ge=0)
    resources: int = Field(0, ge=0, description="Objects restored and found in the cluster")
    hooks: int = Field(0, ge=0, description="Post-restore hooks run as the app's probe")
    message: str = ""


class VerificationEvent(Payload):
    operation_id: Identifier
    app_id: str
    bucket: Identifier
    backup_id: str = ""
    target_cluster: str = ""
    message: str = ""
