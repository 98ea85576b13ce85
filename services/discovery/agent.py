"""The cluster agent's Kubernetes calls: requests on `vessel.query.agent.<cluster>.<verb>`
made with the cluster's own client, so the hub's flows need no credentials of it.

Discovery is the cluster agent: whichever discovery process watches a cluster (in the
cluster with its ServiceAccount, or on the hub side with a registered kubeconfig) answers
that cluster's calls, from when it starts watching until it stops. Replicas share one
queue group per cluster. A call that cannot be decoded, or whose answer would not fit in
one bus message, is answered with an error naming why; Kubernetes errors travel back as
their class and message.
"""

from __future__ import annotations

import asyncio
import logging

from pydantic import ValidationError

from vessel.bus.nats_port import Bus
from vessel.contracts import queries
from vessel.contracts.agent import KubeAnswer, KubeCall
from vessel.contracts.events import QueryFailed
from vessel.kube.errors import KubeError
from vessel.kube.port import KubeApi

log = logging.getLogger("vessel.discovery")


async def perform(kube: KubeApi, call: KubeCall) -> KubeAnswer:
    """Make `call` with `kube`; KubeError propagates."""
    c = call
    if c.verb == "get":
        return KubeAnswer(object=await kube.get(c.api_version, c.kind, c.name, c.namespace))
    if c.verb == "list":
        items, version = await kube.list(c.api_version, c.kind, c.namespace, c.label_selector)
        return KubeAnswer(items=items, resource_version=version)
    if c.verb == "create":
        return KubeAnswer(object=await kube.create(dict(c.object or {})))
    if c.verb == "replace":
        return KubeAnswer(object=await kube.replace(dict(c.object or {})))
    if c.verb == "patch":
        patched = await kube.patch(
            c.api_version, c.kind, c.name, c.namespace, dict(c.patch or {}), status=c.status
        )
        return KubeAnswer(object=patched)
    if c.verb == "delete":
        await kube.delete(c.api_version, c.kind, c.name, c.namespace)
        return KubeAnswer()
    ran = await kube.exec(c.namespace or "", c.pod, c.container, list(c.command), c.timeout)
    return KubeAnswer(
        exit_code=ran.exit_code, stdout=ran.stdout, stderr=ran.stderr, truncated=ran.truncated
    )


async def answer(kube: KubeApi, cluster_id: str, subject: str, body: bytes, limit: int) -> bytes:
    """The encoded answer to one request on `subject`, at most `limit` bytes."""
    verb = subject.rsplit(".", 1)[-1]
    try:
        call = KubeCall.model_validate_json(body)
        if call.verb != verb:
            raise ValueError(f"the call's verb {call.verb!r} is not the subject's {verb!r}")
    except ValidationError as exc:
        result = KubeAnswer(error_class="BadRequest", error=QueryFailed.invalid(subject, exc).error)
    except ValueError as exc:
        result = KubeAnswer(error_class="BadRequest", error=f"{subject}: {exc}")
    else:
        try:
            result = await perform(kube, call)
        except KubeError as exc:
            result = KubeAnswer(error_class=type(exc).__name__, error=str(exc))
    data = result.model_dump_json(exclude_defaults=True).encode()
    if len(data) > limit:
        log.warning(
            "cluster %s: a %s answer of %d bytes is too large",
            cluster_id,
            verb,
            len(data),
        )
        data = (
            KubeAnswer(
                error_class="KubeError",
                error=f"cluster {cluster_id}: the answer to {verb} is {len(data)} bytes, more than "
                f"the bus carries in one message ({limit}); raise the NATS server's max_payload",
            )
            .model_dump_json(exclude_defaults=True)
            .encode()
        )
    return data


async def serve(bus: Bus, cluster_id: str, kube: KubeApi) -> asyncio.Task[None]:
    """Answer the cluster's calls until the returned task is cancelled."""

    async def handle(subject: str, body: bytes) -> bytes:
        return await answer(kube, cluster_id, subject, body, bus.max_payload)

    return await bus.serve(
        queries.agent_subject(cluster_id, "*"), handle, queue=f"agent-{cluster_id}"
    )
