"""KV `restore_waits`: `<cluster>.<namespace>.<claim>` holds the id of the restore waiting
for that claim to be provisioned. Recorded before the claim exists, so the provisioner's
`volume.provisioned` can never come before the restore listens for it."""

from __future__ import annotations

from vessel.bus.nats_port import KeyValue


def wait_key(cluster: str, namespace: str, claim: str) -> str:
    return f"{cluster}.{namespace}.{claim}"


class RestoreWaits:
    def __init__(self, kv: KeyValue) -> None:
        self.kv = kv

    async def expect(self, cluster: str, namespace: str, claim: str, op_id: str) -> None:
        await self.kv.put(wait_key(cluster, namespace, claim), op_id.encode())

    async def waiting(self, cluster: str, namespace: str, claim: str) -> str | None:
        """The restore waiting for the claim; None when it is not a claim a restore waits
        for."""
        entry = await self.kv.get(wait_key(cluster, namespace, claim))
        return entry.value.decode() if entry is not None else None

    async def end(self, cluster: str, namespace: str, claim: str) -> None:
        await self.kv.delete(wait_key(cluster, namespace, claim))
