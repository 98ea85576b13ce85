"""The bucket registry: buckets registered at run time, next to those in the settings.

A registered bucket names its S3 credentials and repository password as references to
Kubernetes Secret keys, never the values: KV `buckets`, events and logs hold only the
references. Each service that opens the bucket reads the Secret from its home cluster (the
mover: its own cluster; protection: `secrets_cluster`, by default the first configured
cluster), as Velero reads a backup location's credentials Secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from vessel.contracts.models import DnsLabel, Identifier, K8sName, Payload

S3BucketName = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
"""An S3 bucket name (3-63 lowercase letters, digits, dots, hyphens)."""

Endpoint = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9.-]+(:[0-9]{1,5})?$")]
"""`host[:port]` of an S3 endpoint, without scheme (`secure` chooses HTTPS)."""


class SecretKeyRef(Payload):
    """One key of a Kubernetes Secret in the reading service's home cluster."""

    namespace: DnsLabel
    name: K8sName
    key: str = Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")


class BucketSpec(Payload):
    name: Identifier = Field(description="Name Vessel knows the bucket by")
    endpoint: Endpoint
    bucket: S3BucketName
    secure: bool = Field(False, description="Use HTTPS")
    access_key: SecretKeyRef
    secret_key: SecretKeyRef
    password: SecretKeyRef = Field(description="The backup repository's password")
    repository: str = Field(
        "repository", pattern=r"^[A-Za-z0-9._-]+$", description="Prefix of the repository"
    )
    like: Identifier | None = Field(
        None, description="A bucket whose repository this one's is created like"
    )


class BucketRecord(Payload):
    """A registered bucket in KV `buckets` (owned by protection)."""

    spec: BucketSpec
    registered: datetime
    registered_by: str = "anonymous"


class PutBucket(Payload):
    """Register (or, as `update`, re-point) a bucket. Protection resolves the Secret keys
    and lists the bucket before it keeps the record; a failure is answered with
    `protection.bucket.rejected` naming what was wrong."""

    operation_id: Identifier
    bucket: BucketSpec
    requested_by: str = "anonymous"


class RemoveBucket(Payload):
    """Forget a registered bucket; its objects (backups, repository) stay in S3."""

    operation_id: Identifier
    name: Identifier
    requested_by: str = "anonymous"


class BucketChanged(Payload):
    operation_id: Identifier
    name: Identifier
    endpoint: str
    bucket: str
    source: Literal["config", "registered"] = "registered"
    requested_by: str = "anonymous"


class BucketRejected(Payload):
    operation_id: Identifier
    name: Identifier
    error: str = Field(description="What was wrong: the Secret, the key, access, the bucket")


class CatalogRead(Payload):
    """Request on `vessel.query.protection.catalog`: list or read backup catalog objects
    of a bucket for a service without the bucket's credentials (the gateway). Only keys
    under `backups/` and `snapshots/` ending in `.json` are served."""

    bucket: Identifier
    action: Literal["list", "get", "exists"]
    key: str = Field(
        min_length=1, max_length=1024, pattern=r"^(backups|snapshots)/[A-Za-z0-9._/-]*$"
    )


class CatalogReply(Payload):
    keys: list[str] = Field(default_factory=list)
    data: str = Field("", description="The object, base64, for get")
    exists: bool = False
    missing: bool = Field(False, description="get of a key that does not exist")
