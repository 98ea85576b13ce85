"""The activity log through the real gateway over TLS: protection's operations and the
gateway's own admin actions, with the identity that asked, newest first, paged, filtered,
and scoped (a scoped caller sees only what its scope covers)."""

from __future__ import annotations

import uuid
from datetime import timedelta

import grpc
import pytest

from services.gateway.auth.tokens import BOOTSTRAP_NAME
from services.protection.state.operations import OperationStore
from tests.gateway.harness import ADMIN_TOKEN, Pki, Starter, bearer, issue, make_settings
from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc
from vessel.api.v1 import tokens_pb2 as tpb
from vessel.api.v1 import tokens_pb2_grpc as trpc
from vessel.bus.nats_port import Bus
from vessel.contracts.activity import BUCKET
from vessel.contracts.operations import Operation, Phase, now


async def test_operations_and_admin_actions_are_recorded_and_scoped(
    start_gateway: Starter, pki: Pki, bus: Bus
) -> None:
    run = uuid.uuid4().hex[:6]
    cluster = f"act-{run}"
    files = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    gw = await start_gateway(make_settings(tls=files, clusters=[cluster]), pki=pki)
    channel = gw.channel()
    stub = irpc.ActivityServiceStub(channel)
    admin = bearer(ADMIN_TOKEN)

    store = OperationStore(await bus.kv("operations"), activity=await bus.kv(BUCKET))
    start = now() + timedelta(seconds=1)  # newer than anything recorded before this test
    for i, namespace in enumerate(("a", "b", "a")):
        op = Operation(
            id=f"backup-{run}-{i}",
            kind="backup",
            app_id=f"{cluster}.{namespace}.web",
            requested_by=f"alice-{run}",
            created=start + timedelta(milliseconds=10 * i),
        )
        assert await store.create(op)
    await store.change(f"backup-{run}-0", lambda o: setattr(o, "phase", Phase.FAILED))

    name, _ = await issue(channel, ADMIN_TOKEN, "viewer", [cluster], ["a"])
    await trpc.TokenServiceStub(channel).RevokeToken(
        tpb.RevokeTokenRequest(name=name), metadata=admin
    )
    _, scoped = await issue(channel, ADMIN_TOKEN, "viewer", [cluster], ["a"])

    mine = await stub.ListActivity(ipb.ListActivityRequest(identity=f"alice-{run}"), metadata=admin)
    assert [r.operation_id for r in mine.records] == [f"backup-{run}-{i}" for i in (2, 1, 0)]
    assert [r.outcome for r in mine.records] == ["New", "New", "Failed"]
    assert {r.action for r in mine.records} == {"backup"} and mine.records[2].cluster == cluster

    tokens = await stub.ListActivity(
        ipb.ListActivityRequest(identity=BOOTSTRAP_NAME, action="token.revoke"), metadata=admin
    )
    assert tokens.records[0].target == f"token/{name}" and tokens.records[0].outcome == "Succeeded"
    created = await stub.ListActivity(
        ipb.ListActivityRequest(action="token.create", page_size=1), metadata=admin
    )
    assert created.records[0].identity == BOOTSTRAP_NAME and created.next_page_token

    seen, token = [], ""
    while True:
        page = await stub.ListActivity(
            ipb.ListActivityRequest(identity=f"alice-{run}", page_size=2, page_token=token),
            metadata=admin,
        )
        seen += [r.id for r in page.records]
        token = page.next_page_token
        if not token:
            break
    assert seen == [f"backup-{run}-{i}" for i in (2, 1, 0)]

    visible = await stub.ListActivity(ipb.ListActivityRequest(), metadata=bearer(scoped))
    assert {r.id for r in visible.records} == {f"backup-{run}-0", f"backup-{run}-2"}
    assert all(r.namespaces == ["a"] for r in visible.records)


async def test_list_activity_validates_its_page(start_gateway: Starter) -> None:
    gw = await start_gateway()
    stub = irpc.ActivityServiceStub(gw.channel())
    for request in (ipb.ListActivityRequest(page_size=-1), ipb.ListActivityRequest(page_token="%")):
        with pytest.raises(grpc.aio.AioRpcError) as bad:
            await stub.ListActivity(request, metadata=bearer(ADMIN_TOKEN))
        assert bad.value.code() == grpc.StatusCode.INVALID_ARGUMENT
