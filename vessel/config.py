"""Configuration: one YAML file (VESSEL_CONFIG) plus VESSEL_* environment variables.

Secrets never sit in the file: a bucket names the environment variables holding its keys.
Every field documents its meaning, unit and default.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from vessel.contracts.models import ClusterId, Identifier

PROVISIONER_NAME = "vessel.io/provisioner"
"""The `provisioner` a StorageClass names to have Vessel provision its claims."""


class ConfigError(Exception):
    """The configuration is invalid; the message names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


POOL_ATTRIBUTES = (
    "media",
    "provisioningType",
    "snapshots",
    "clones",
    "encryption",
    "compression",
    "iopsClass",
)
"""Attributes a pool offers and a StorageClass may require (Trident's names)."""


class PoolAttributes(_Strict):
    """What a pool offers; an attribute left out is derived from the backend where it can be
    (`snapshots`, `clones` from its capabilities, `provisioningType` thin, `encryption`
    false) and otherwise matches no class that requires it."""

    media: Literal["hdd", "ssd", "nvme", "hybrid"] | None = Field(None, description="Disk kind")
    provisioningType: Literal["thin", "thick"] | None = Field(
        None, description="thin: space used as written; thick: reserved up front"
    )
    snapshots: bool | None = Field(None, description="Volumes can be snapshotted")
    clones: bool | None = Field(None, description="Volumes can be cloned")
    encryption: bool | None = Field(None, description="Data is encrypted at rest")
    compression: bool | None = Field(
        None, description="Volumes store data compressed (btrfs: zstd); dir backends cannot"
    )
    iopsClass: str | None = Field(
        None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$", description="A performance tier name"
    )

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: object) -> object:
        if isinstance(data, dict):
            unknown = sorted(str(k) for k in data if k not in POOL_ATTRIBUTES)
            if unknown:
                raise ValueError(
                    f"unknown pool attribute {', '.join(unknown)} "
                    f"(known: {', '.join(POOL_ATTRIBUTES)}; free-form ones go in labels)"
                )
        return data


class PoolConfig(_Strict):
    name: Identifier = Field(description="Pool name, unique within its backend")
    attributes: PoolAttributes = Field(
        default_factory=PoolAttributes, description="What the pool offers"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Free-form labels a StorageClass `selector` matches"
    )
    capacity_bytes: int | None = Field(
        None, gt=0, description="Bytes this pool may allocate; default: the backend's free space"
    )
    low_capacity_percent: float = Field(
        10.0,
        ge=0,
        le=100,
        description="Publish provisioner.pool.capacity.low when free space falls below this "
        "percentage of the pool's total",
    )


def _unique_pools(pools: list[PoolConfig]) -> list[PoolConfig]:
    names = [p.name for p in pools]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"duplicate pool name {', '.join(dupes)}")
    return pools


class BackendConfig(_Strict):
    name: Identifier = Field(description="Backend name, unique within its cluster")
    type: Literal["btrfs", "dir"] = Field(
        description="btrfs: subvolumes + qgroups; dir: directories"
    )
    path: Path = Field(description="Mount point (btrfs) or directory (dir) holding the volumes")
    capacity_bytes: int | None = Field(
        None, gt=0, description="Bytes offered to claims; default: the filesystem's free space"
    )
    pools: Annotated[list[PoolConfig], AfterValidator(_unique_pools)] = Field(
        default_factory=list,
        description="Virtual pools sharing the backend's space; none: one pool named default",
    )


class ClusterConfig(_Strict):
    id: ClusterId = Field(description="Cluster id: a DNS label, also a NATS subject token")
    kubeconfig: Path = Field(description="kubeconfig file for this cluster's API server")
    agent: Literal["hub", "cluster"] = Field(
        "hub",
        description="Where the cluster's agent runs: hub (the hub's discovery watches it with "
        "this kubeconfig) or cluster (`vessel-discovery --cluster ID` runs in the cluster, "
        "and no hub process opens this kubeconfig)",
    )
    backends: list[BackendConfig] = Field(default_factory=list, description="Local backends")
    node_name: str | None = Field(
        default_factory=lambda: os.environ.get("NODE_NAME") or None,
        description="Node the provisioner's backends live on (default: env NODE_NAME); when "
        "set, its PVs require kubernetes.io/hostname=<node>",
    )


class PasswordKeyConfig(_Strict):
    """The master key wrapped under a password (scrypt), read from the bucket's
    `password_env`."""

    provider: Literal["password"] = Field("password", description="Key provider")


class SecretKeyConfig(_Strict):
    """The master key wrapped under a random 32-byte key, base64 in a Kubernetes Secret
    key (protection reads it in `secrets_cluster`, a mover in its own cluster)."""

    provider: Literal["kubernetes-secret"] = Field(description="Key provider")
    namespace: str = Field(min_length=1, description="Namespace of the Secret")
    name: str = Field(min_length=1, description="Name of the Secret")
    key: str = Field(min_length=1, description="Key in the Secret holding the base64 key")


class KmsKeyConfig(_Strict):
    """The master key encrypted by AWS KMS (or any server speaking its API); credentials
    come from the standard AWS environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_SESSION_TOKEN, AWS_PROFILE, web identity), never from this file."""

    provider: Literal["aws-kms"] = Field(description="Key provider")
    key_id: str = Field(min_length=1, description="KMS key id, key ARN or alias (alias/NAME)")
    region: str | None = Field(None, description="KMS region; default: AWS_DEFAULT_REGION")
    endpoint_url: str | None = Field(
        None,
        pattern=r"^https?://",
        description="KMS endpoint URL; default: AWS_ENDPOINT_URL_KMS, else AWS's own",
    )
    bound_to: str | None = Field(
        None,
        min_length=1,
        description="What key files are bound to (KMS encryption context); default "
        "`<bucket>/<repository>`. Set it to the original's to open a copy of a bucket "
        "under another name",
    )


KeyConfig = Annotated[
    PasswordKeyConfig | SecretKeyConfig | KmsKeyConfig, Field(discriminator="provider")
]


class ObjectLockConfig(_Strict):
    """S3 Object Lock on a bucket's backups (docs/design/0005-object-lock.md)."""

    mode: Literal["governance", "compliance"] = Field(
        description="`governance`: principals allowed to bypass governance retention can "
        "still delete locked objects; `compliance`: no one can, not even the root account, "
        "until the retention ends"
    )
    retain_days: int = Field(
        ge=1,
        description="Days every backup object stays locked after it is written (plus a "
        "one-day margin); data an incremental backup reuses is locked as long as the new "
        "backup. The bucket must have been created with object lock (Vessel creates it so)",
    )


class BucketConfig(_Strict):
    name: Identifier = Field(description="Name Vessel knows the bucket by")
    endpoint: str = Field(description="S3 endpoint host:port")
    bucket: str = Field(min_length=3, description="S3 bucket name")
    secure: bool = Field(False, description="Use HTTPS")
    access_key_env: str = Field("VESSEL_S3_ACCESS_KEY", description="Env var with the access key")
    secret_key_env: str = Field("VESSEL_S3_SECRET_KEY", description="Env var with the secret key")
    repository: str = Field(
        "repository", pattern=r"^[A-Za-z0-9._-]+$", description="Prefix of the backup repository"
    )
    password_env: str = Field(
        "VESSEL_REPOSITORY_PASSWORD",
        description="Env var with the repository password (key provider `password`)",
    )
    key: KeyConfig = Field(
        default_factory=PasswordKeyConfig,
        description="What wraps the bucket's master key: `password` (default), "
        "`kubernetes-secret` or `aws-kms` (docs/design/0004-key-providers.md)",
    )
    like: Identifier | None = Field(
        None,
        description="Another bucket whose repository this one's is created like (same blob "
        "ids), so copies between them move only missing data",
    )
    object_lock: ObjectLockConfig | None = Field(
        None,
        description="Lock everything a backup writes with S3 Object Lock, so the bucket's "
        "own write keys cannot delete or overwrite it; unset: no lock",
    )

    def password(self) -> str:
        try:
            return os.environ[self.password_env]
        except KeyError as exc:
            raise ConfigError(
                f"bucket {self.name!r}: environment variable {exc} is not set"
            ) from exc

    def credentials(self) -> tuple[str, str]:
        try:
            return os.environ[self.access_key_env], os.environ[self.secret_key_env]
        except KeyError as exc:
            raise ConfigError(
                f"bucket {self.name!r}: environment variable {exc} is not set"
            ) from exc


class GatewayTLSConfig(_Strict):
    """TLS on the gateway; nothing set: plaintext gRPC (logged as a warning)."""

    cert_file: Path | None = Field(None, description="PEM server certificate (chain)")
    key_file: Path | None = Field(None, description="PEM private key of `cert_file`")
    client_ca_file: Path | None = Field(
        None,
        description="PEM CA bundle: when set, clients must present a certificate it signed (mTLS)",
    )

    @model_validator(mode="after")
    def _complete(self) -> GatewayTLSConfig:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("cert_file and key_file are set together")
        if self.client_ca_file is not None and self.cert_file is None:
            raise ValueError("client_ca_file (mTLS) needs cert_file and key_file")
        return self

    @property
    def enabled(self) -> bool:
        return self.cert_file is not None


class GatewayAuthConfig(_Strict):
    """Bearer-token authentication on the gateway (tokens are issued through TokenService)."""

    required: bool = Field(
        True,
        description="false: while no admin token is set and no token exists, the gateway is "
        "open (every caller is an anonymous admin; allowed on a loopback gateway_listen only)",
    )
    admin_token_env: str = Field(
        "VESSEL_ADMIN_TOKEN",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Env var holding the bootstrap admin token (at least 24 characters)",
    )


def _default_state_dir() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "vessel"


class VesselSettings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VESSEL_", env_nested_delimiter="__", extra="forbid"
    )

    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server URL")
    nats_user: str | None = Field(
        None, description="NATS user of this service (with nats_password); unset: none"
    )
    nats_password: SecretStr | None = Field(
        None, description="Password of nats_user; from the environment (VESSEL_NATS_PASSWORD)"
    )
    nats_jetstream_domain: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="JetStream domain of the hub, when this service's NATS server is a leaf "
        "node without JetStream; unset: the server's own JetStream",
    )
    nats_credentials: Path | None = Field(
        None,
        description="NATS .creds file of this service (JWT and nkey seed), instead of a "
        "user and password; the chart mounts it (VESSEL_NATS_CREDENTIALS)",
    )
    nats_callout_seed: SecretStr | None = Field(
        None,
        description="The hub's discovery only: seed of the account nkey named as issuer in "
        "the hub's NATS auth_callout, with which it admits clusters joining by token "
        "(VESSEL_NATS_CALLOUT_SEED); unset: no cluster joins by token",
    )
    nats_system_password: SecretStr | None = Field(
        None,
        description="The hub's discovery only: password of the hub NATS's system-account user "
        "`system`, to cut a removed cluster's leaf connection (VESSEL_NATS_SYSTEM_PASSWORD)",
    )
    clusters: list[ClusterConfig] = Field(default_factory=list, description="Managed clusters")
    buckets: list[BucketConfig] = Field(default_factory=list, description="Backup buckets")
    secrets_cluster: ClusterId | None = Field(
        None,
        description="Cluster whose Secrets hold registered buckets' credentials (protection); "
        "unset: the first cluster. Movers read them from their own cluster.",
    )
    metrics_listen: str | None = Field(
        None,
        pattern=r"^[^:]*:[0-9]{1,5}$",
        description="host:port serving Prometheus /metrics; unset: no metrics endpoint",
    )
    otlp_endpoint: str | None = Field(
        None,
        pattern=r"^https?://[^/\s:]+(:[0-9]{1,5})?/?$",
        description="OTLP/gRPC collector receiving trace spans, http://host:port (plaintext) "
        "or https://host:port; unset: the standard OTEL_EXPORTER_OTLP_ENDPOINT, else spans "
        "are not exported",
    )
    gateway_listen: str = Field("127.0.0.1:50051", description="gRPC listen address")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field("INFO", description="Log level")
    provisioner_resync_seconds: float = Field(
        15.0, gt=0, description="Provisioner: seconds between full reconciliations"
    )
    provisioner_autogrow_seconds: float = Field(
        30.0, gt=0, description="Provisioner: seconds between auto-grow usage checks"
    )
    agent_wait_seconds: float = Field(
        30.0,
        ge=0,
        description="Protection: how long a Kubernetes call waits for a cluster's agent that "
        "is not there (restarting, reconnecting) before the step fails, naming the cluster",
    )
    store_retry_seconds: float = Field(
        5.0,
        gt=0,
        description="Mover and protection: first wait before work whose bucket is unreachable "
        "is tried again; each retry waits twice as long (up to 60 s), and after five "
        "deliveries the work fails, naming the store",
    )
    redelivery_seconds: float = Field(
        30.0,
        ge=3,
        description="Every service: seconds after which a command or event whose worker died "
        "(killed, cut off) goes to another worker; a live worker says it is still at work every "
        "third of this. Read when a consumer is first made",
    )
    operation_stall_seconds: float = Field(
        3600.0,
        gt=0,
        description="Protection: an operation that has not ended and has shown no change and no "
        "transfer progress for this long is failed, naming what it still waited for",
    )
    mover_transfers: int = Field(
        2,
        ge=1,
        le=64,
        description="Mover: volume transfers (backups, restores, copies) one node runs at once; "
        "the volumes of one app move in parallel up to this",
    )
    verification_slots: int = Field(
        1,
        ge=1,
        le=100,
        description="Protection: restore verifications running at once in one cluster; more "
        "wait their turn",
    )
    verification_quota: dict[str, str] = Field(
        default_factory=lambda: {
            "pods": "4",
            "services.loadbalancers": "0",
            "services.nodeports": "0",
        },
        description="Protection: the `hard` limits of the ResourceQuota in a verification's "
        "scratch namespaces (empty: no quota): a restored copy never exposes a port outside "
        "the cluster and starts few pods",
    )
    schedule_grace_seconds: float = Field(
        60.0,
        gt=0,
        description="Protection: seconds after a schedule's due time within which it still "
        "starts normally; later, the time is reported missed and only the newest is caught up",
    )
    gateway_tls: GatewayTLSConfig = Field(
        default_factory=GatewayTLSConfig, description="Gateway TLS and optional mTLS"
    )
    gateway_auth: GatewayAuthConfig = Field(
        default_factory=GatewayAuthConfig, description="Gateway authentication"
    )
    state_dir: Path = Field(
        default_factory=lambda: _default_state_dir(),
        description="Directory for state a service keeps on disk (discovery: kubeconfigs of "
        "registered clusters, 0600); default $XDG_STATE_HOME/vessel or ~/.local/state/vessel",
    )

    @model_validator(mode="after")
    def _nats_auth(self) -> VesselSettings:
        if (self.nats_user is None) != (self.nats_password is None):
            raise ValueError("nats_user and nats_password go together: set both or neither")
        if self.nats_user is not None and self.nats_credentials is not None:
            raise ValueError("set nats_credentials or nats_user, not both")
        return self

    @model_validator(mode="after")
    def _unique(self) -> VesselSettings:
        for label, names in (
            ("cluster", [c.id for c in self.clusters]),
            ("bucket", [b.name for b in self.buckets]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"duplicate {label} {', '.join(dupes)}")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        path = os.environ.get("VESSEL_CONFIG")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if path:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=path))
        return tuple(sources)

    def cluster(self, cluster_id: str) -> ClusterConfig:
        for cluster in self.clusters:
            if cluster.id == cluster_id:
                return cluster
        raise ConfigError(f"cluster {cluster_id!r} is not configured")

    def bucket(self, name: str) -> BucketConfig:
        for bucket in self.buckets:
            if bucket.name == name:
                return bucket
        raise ConfigError(f"bucket {name!r} is not configured")


def load_settings(config_path: str | None = None) -> VesselSettings:
    """Load settings; `config_path` overrides VESSEL_CONFIG. Errors name the file and field."""
    if config_path:
        if not Path(config_path).is_file():
            raise ConfigError(f"config file {config_path} does not exist")
        os.environ["VESSEL_CONFIG"] = config_path
    try:
        return VesselSettings()
    except ValidationError as exc:
        where = os.environ.get("VESSEL_CONFIG", "environment")
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid configuration in {where}: {problems}") from exc
