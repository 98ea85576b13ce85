"""The clusters protection works on, and their Kubernetes API through each cluster's agent.

Protection holds no kubeconfig: every Kubernetes call of its flows is a request to the
agent of the cluster (`vessel.query.agent.<cluster>.<verb>`, answered by the discovery
process that watches it; `services/discovery/agent.py`). A cluster is known when
discovery has registered it (KV `clusters`), so one registered at run time is usable at
once. An agent that does not answer is `Unreachable`, with the cluster's recorded state
and reason when discovery knows why.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Protocol

from pydantic import ValidationError

from vessel.bus.errors import BusError
from vessel.bus.nats_port import Bus, KeyValue
from vessel.contracts import queries
from vessel.contracts.agent import EXEC_MAX_SECONDS, KubeAnswer, KubeCall
from vessel.contracts.events import ClusterRecord
from vessel.kube import errors
from vessel.kube.exec_stream import ExecResult
from vessel.kube.objects import KubeObject
from vessel.kube.port import Argv, KubeApi

CALL_SECONDS = 30.0
"""How long an API call may take through the agent (exec: its own timeout and this)."""


class Clusters(Protocol):
    """The clusters protection may work on, and a client for each."""

    async def ids(self) -> list[str]:
        """Every registered cluster, sorted."""
        ...

    async def kube(self, cluster_id: str) -> KubeApi | None:
        """The cluster's API, or None when it is not registered."""
        ...


class AgentKube:
    """`KubeApi` over NATS: each call is a request to the cluster's agent.

    A call nobody receives (no agent serves the cluster right now) is sent again every
    second for up to `patience` seconds, so an agent's restart does not fail the step; it
    never reached an agent, so even a non-idempotent call is safe to send again. A call
    an agent received but did not answer in time (it may have died with it) is sent once
    more, except `exec`: the API server itself makes the others safe to repeat (a create
    done the first time is `AlreadyExists`, a replace `Conflict`, a delete `NotFound`, and
    callers handle each)."""

    def __init__(
        self,
        bus: Bus,
        cluster_id: str,
        records: KeyValue | None = None,
        patience: float = 0.0,
    ) -> None:
        self.bus, self.cluster_id, self.records = bus, cluster_id, records
        self.patience = patience

    async def _call(self, call: KubeCall, wait: float | None = None) -> KubeAnswer:
        wait = CALL_SECONDS if wait is None else wait
        subject = queries.agent_subject(self.cluster_id, call.verb)
        give_up = time.monotonic() + self.patience
        timeouts = 0
        while True:
            try:
                body = await self.bus.request(subject, call.model_dump_json().encode(), wait=wait)
                break
            except BusError:
                if time.monotonic() >= give_up:
                    waited = f" (waited {self.patience:g} s)" if self.patience else ""
                    raise errors.Unreachable(
                        await self._away(f"no agent answers{waited}")
                    ) from None
                await asyncio.sleep(1.0)
            except TimeoutError:
                timeouts += 1
                if call.verb != "exec" and timeouts == 1:
                    continue
                raise errors.Unreachable(
                    await self._away(f"its agent did not answer a {call.verb} in {wait:.0f} s")
                ) from None
        try:
            answer = KubeAnswer.model_validate_json(body)
        except ValidationError as exc:
            raise errors.KubeError(
                f"cluster {self.cluster_id}: the agent's answer to {call.verb} is not a "
                f"KubeAnswer: {exc}"
            ) from None
        if answer.error_class:
            raise errors.BY_NAME.get(answer.error_class, errors.KubeError)(answer.error)
        return answer

    async def _away(self, what: str) -> str:
        message = f"cluster {self.cluster_id}: {what}"
        record = await self._record()
        if record is None:
            return f"{message}; it is not registered"
        if record.away(datetime.now(UTC)):
            return f"{message}; {record.away_reason()}"
        if record.state != "Available":
            return f"{message}; discovery reports it {record.state}: {record.reason}"
        return f"{message}; is its agent running and connected to the bus?"

    async def _record(self) -> ClusterRecord | None:
        if self.records is None:
            return None
        try:
            entry = await self.records.get(self.cluster_id)
        except Exception:  # the bus is away too: the message says enough without it
            return None
        if entry is None or not entry.value:
            return None
        try:
            return ClusterRecord.model_validate_json(entry.value)
        except ValidationError:
            return None

    async def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> KubeObject | None:
        call = KubeCall(
            verb="get", api_version=api_version, kind=kind, name=name, namespace=namespace
        )
        return (await self._call(call)).object

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> tuple[list[KubeObject], str]:
        answer = await self._call(
            KubeCall(
                verb="list",
                api_version=api_version,
                kind=kind,
                namespace=namespace,
                label_selector=label_selector,
            )
        )
        return answer.items, answer.resource_version

    async def _write(self, call: KubeCall) -> KubeObject:
        answer = await self._call(call)
        if answer.object is None:
            raise errors.KubeError(f"cluster {self.cluster_id}: {call.verb} answered no object")
        return answer.object

    async def create(self, obj: KubeObject) -> KubeObject:
        return await self._write(KubeCall(verb="create", object=obj))

    async def replace(self, obj: KubeObject) -> KubeObject:
        return await self._write(KubeCall(verb="replace", object=obj))

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None,
        patch: KubeObject,
        *,
        status: bool = False,
    ) -> KubeObject:
        call = KubeCall(
            verb="patch",
            api_version=api_version,
            kind=kind,
            name=name,
            namespace=namespace,
            patch=patch,
            status=status,
        )
        return await self._write(call)

    async def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None:
        call = KubeCall(
            verb="delete", api_version=api_version, kind=kind, name=name, namespace=namespace
        )
        await self._call(call)

    async def exec(
        self,
        namespace: str,
        pod: str,
        container: str,
        command: Argv,
        timeout: float,  # noqa: ASYNC109 - the agent enforces it; the request waits longer
    ) -> ExecResult:
        if not command:
            raise errors.BadRequest(
                f"cluster {self.cluster_id}: exec in {namespace}/{pod}: empty command"
            )
        seconds = min(max(timeout, 0.001), EXEC_MAX_SECONDS)
        call = KubeCall(
            verb="exec",
            namespace=namespace,
            pod=pod,
            container=container,
            command=command,
            timeout=seconds,
        )
        answer = await self._call(call, wait=seconds + CALL_SECONDS)
        return ExecResult(answer.exit_code, answer.stdout, answer.stderr, answer.truncated)


class AgentClusters:
    """The clusters discovery registered (KV `clusters`), each through its agent."""

    def __init__(self, bus: Bus, records: KeyValue, patience: float = 0.0) -> None:
        self.bus, self.records, self.patience = bus, records, patience

    async def ids(self) -> list[str]:
        return sorted(await self.records.keys())

    async def kube(self, cluster_id: str) -> KubeApi | None:
        entry = await self.records.get(cluster_id)
        if entry is None or not entry.value:
            return None
        return AgentKube(self.bus, cluster_id, self.records, self.patience)


class DirectClusters:
    """Clusters reached with clients this process holds (flows run on their own, in
    tests and embeddings, with the clients a hub-side agent would use)."""

    def __init__(self, clients: Mapping[str, KubeApi]) -> None:
        self.clients: dict[str, KubeApi] = dict(clients)

    async def ids(self) -> list[str]:
        return sorted(self.clients)

    async def kube(self, cluster_id: str) -> KubeApi | None:
        return self.clients.get(cluster_id)
