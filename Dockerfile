# syntax=docker/dockerfile:1
#
# One image for every Vessel role. The command picks the role:
#
#   docker run vessel:dev vessel-gateway
#   docker run vessel:dev vessel-discovery
#   docker run vessel:dev vessel-protection
#   docker run --privileged --user 0 vessel:dev vessel-provisioner --cluster ID
#   docker run --privileged --user 0 vessel:dev vessel-mover --cluster ID
#
# Every service also runs as `python -m services.<name>`. Configuration comes from the
# YAML file named by VESSEL_CONFIG plus VESSEL_* environment variables.
FROM python:3.11-slim

ARG VERSION=0.1.0
ARG SOURCE_URL=https://github.com/vessel-project/vessel

LABEL org.opencontainers.image.title="vessel" \
      org.opencontainers.image.description="Storage orchestration and application backup for Kubernetes, as event-driven services over NATS JetStream" \
      org.opencontainers.image.source="${SOURCE_URL}" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# btrfs-progs: the node roles (provisioner, mover) manage btrfs subvolumes and qgroups.
RUN apt-get update \
    && apt-get install -y --no-install-recommends btrfs-progs \
    && rm -rf /var/lib/apt/lists/*

# Unprivileged default user. The node agents run as root (the Helm chart and the compose
# file override the user for them); every other role keeps this one.
RUN groupadd --system --gid 10001 vessel \
    && useradd --system --uid 10001 --gid vessel --home-dir /var/lib/vessel \
       --no-create-home --shell /usr/sbin/nologin vessel \
    && mkdir -p /etc/vessel /var/lib/vessel/volumes \
    && chown -R vessel:vessel /var/lib/vessel

WORKDIR /usr/src/vessel
COPY . .
# Exactly the locked runtime packages with the KMS key provider (hash-checked), then Vessel
# itself without resolving anything: a new upstream release never changes the image.
# Compiled to bytecode at build: PYTHONDONTWRITEBYTECODE and a read-only root filesystem
# would otherwise have every process compile each module at start (~0.5 s of CPU).
RUN pip install --no-cache-dir "uv==$(sed -n '/^name = "uv"$/{n;s/^version = "\(.*\)"$/\1/p;}' uv.lock)" \
    && uv export --frozen --no-emit-project --extra kms --format requirements-txt -o /tmp/requirements.txt \
    && uv pip install --system --no-cache --compile-bytecode --require-hashes -r /tmp/requirements.txt \
    && uv pip install --system --no-cache --compile-bytecode --no-deps . \
    && pip uninstall -y -q uv \
    && rm -rf build ./*.egg-info /tmp/requirements.txt

WORKDIR /var/lib/vessel
USER 10001:10001

# A liveness floor that works for every role without extra tools: the interpreter starts
# and the package imports. Kubernetes probes (gRPC health on the gateway) are the real
# health checks; this one only serves plain `docker run` and compose.
HEALTHCHECK --interval=30s --timeout=10s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import vessel"]

CMD ["vessel", "--help"]
