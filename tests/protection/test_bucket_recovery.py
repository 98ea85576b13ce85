"""Disaster recovery of Vessel itself: a fresh install (new NATS, no KV state, new clusters)
pointed at the bucket of a lost one lists its backups from the bucket alone and restores
one, bytes identical; and recovers the lost one's policies from the same bucket."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from services.protection.platform import exports
from tests.support import IN_CI, require, vessel_cli
from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import protection_pb2_grpc as prpc
from vessel.api.v1 import vessel_pb2 as pb
from vessel.api.v1 import vessel_pb2_grpc as rpc
from vessel.kube.client import KubeCluster
from vessel_dev.rig.btrfs import btrfs_available
from vessel_dev.rig.processes import S3Server
from vessel_dev.rig.scenario import (
    APP,
    CLAIM,
    NAMESPACE,
    bound_volume_path,
    create_app_with_data,
    tree_digest,
)
from vessel_dev.rig.stack import Stack

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]
APP_ID = f"cluster-a.{NAMESPACE}.{APP}"
PASSWORD = "the-lost-installs-repository-password"


async def app_discovered(stack: Stack) -> dict[str, str]:
    """The app with data in cluster A of `stack`, once discovery lists it bound; its digest."""
    a = KubeCluster(stack.kubeconfigs["cluster-a"], "cluster-a")
    await a.create(stack.storage_class())
    digest = await create_app_with_data(a)
    with grpc.insecure_channel(stack.gateway) as channel:
        apps = rpc.AppServiceStub(channel)
        for _ in range(300):
            found = apps.ListApps(pb.ListAppsRequest()).apps
            if any(x.id == APP_ID and x.claims and x.claims[0].volume_name for x in found):
                return digest
            await asyncio.sleep(0.1)
    raise AssertionError(f"{APP_ID} was never discovered with its bound claim")


async def back_up_in_a_first_install(workdir: Path, s3: S3Server) -> tuple[str, dict[str, str]]:
    with Stack(workdir, shared_s3=s3, repository_password=PASSWORD) as first:
        digest = await app_discovered(first)
        with grpc.insecure_channel(first.gateway) as channel:
            op = rpc.BackupServiceStub(channel).CreateBackup(
                pb.CreateBackupRequest(app_id=APP_ID, bucket="default", request_id="lost")
            )
            done = rpc.OperationServiceStub(channel).WaitOperation(
                pb.WaitOperationRequest(id=op.id, timeout_seconds=120)
            )
            assert done.phase == "Completed", done.message
        return op.id, digest


async def test_a_fresh_install_restores_from_the_bucket_alone(
    tmp_path: Path, s3_server: S3Server
) -> None:
    if IN_CI:
        require(btrfs_available())
    backup_id, digest = await back_up_in_a_first_install(tmp_path / "first", s3_server)

    with Stack(tmp_path / "fresh", shared_s3=s3_server, repository_password=PASSWORD) as fresh:
        b = KubeCluster(fresh.kubeconfigs["cluster-b"], "cluster-b")
        await b.create(fresh.storage_class())
        with grpc.insecure_channel(fresh.gateway) as channel:
            listed = prpc.BackupCatalogServiceStub(channel).ListBackups(
                ppb.ListBackupsRequest(bucket="default")
            )
            mine = [x for x in listed.backups if x.id == backup_id]
            assert mine and mine[0].app_id == APP_ID and mine[0].cluster == "cluster-a"
            assert [v.claim for v in mine[0].volumes] == [CLAIM]
            restore = rpc.RestoreServiceStub(channel).CreateRestore(
                pb.CreateRestoreRequest(
                    backup_id=backup_id,
                    bucket="default",
                    target_cluster="cluster-b",
                    namespace_mapping={NAMESPACE: "shop-recovered"},
                )
            )
            done = rpc.OperationServiceStub(channel).WaitOperation(
                pb.WaitOperationRequest(id=restore.id, timeout_seconds=120)
            )
            assert done.phase == "Completed", done.message
        restored = await bound_volume_path(b, "shop-recovered", CLAIM)
        assert tree_digest(restored) == digest


async def policies_in_a_first_install(workdir: Path, s3: S3Server) -> str:
    """A backup, a backup schedule, a hook and a schedule made then deleted, exported to the
    bucket; the install's id."""
    with Stack(workdir, shared_s3=s3, repository_password=PASSWORD) as first:
        await app_discovered(first)
        with grpc.insecure_channel(first.gateway) as channel:
            op = rpc.BackupServiceStub(channel).CreateBackup(  # the bucket's key comes with it
                pb.CreateBackupRequest(app_id=APP_ID, bucket="default")
            )
            done = rpc.OperationServiceStub(channel).WaitOperation(
                pb.WaitOperationRequest(id=op.id, timeout_seconds=120)
            )
            assert done.phase == "Completed", done.message
            schedules = prpc.ScheduleServiceStub(channel)
            for schedule_id in ("every-minute", "gone"):
                schedules.CreateSchedule(
                    ppb.CreateScheduleRequest(
                        schedule=ppb.Schedule(
                            id=schedule_id,
                            app_id=APP_ID,
                            kind="backup",
                            bucket="default",
                            frequency="cron",
                            cron="* * * * *",
                        )
                    )
                )
            prpc.HookServiceStub(channel).PutHook(
                ppb.PutHookRequest(
                    hook=ppb.Hook(
                        id="checkpoint",
                        app_id=APP_ID,
                        stage="post-restore",
                        container_name="^db$",
                        command=["true"],
                    )
                )
            )
            for _ in range(100):  # protection stores them shortly after the answers
                if len(schedules.ListSchedules(ppb.ListSchedulesRequest()).schedules) == 2:
                    break
                await asyncio.sleep(0.1)
            schedules.DeleteSchedule(ppb.DeleteScheduleRequest(id="gone"))
        sealed = first.sealed()
        for _ in range(150):
            for install, export in exports(sealed, own="").items():
                if [s.id for s in export.schedules] == ["every-minute"] and export.hooks:
                    return install
            await asyncio.sleep(0.2)
        raise AssertionError("the platform export never held the schedule and the hook")


async def test_a_lost_platform_recovers_its_policies_from_the_bucket(
    tmp_path: Path, s3_server: S3Server
) -> None:
    """The second install replays the export: the schedule (not the deleted one) and the
    hook come back, the schedule fires, and its backup lists beside the first install's."""
    if IN_CI:
        require(btrfs_available())
    lost = await policies_in_a_first_install(tmp_path / "first", s3_server)
    with Stack(tmp_path / "fresh", shared_s3=s3_server, repository_password=PASSWORD) as fresh:
        await app_discovered(fresh)  # before the recovered schedule can fire
        # named, then the most recent export of another install: the lost one's both
        for attempt, chosen in (("first", ["--from", lost]), ("again", [])):
            code, out, err = await asyncio.to_thread(
                vessel_cli, fresh, "", "-o", "json", "platform", "recover", "--bucket", "default",
                *chosen, "--wait", "--request-id", f"recover-{attempt}",
            )  # fmt: skip
            assert code == 0, err
            assert (
                f"replayed 1 schedules, 1 hooks, 0 app definitions, 0 registered buckets "
                f"exported by {lost}" in out.decode()
            ), out
        with grpc.insecure_channel(fresh.gateway) as channel:
            schedules = prpc.ScheduleServiceStub(channel)
            for _ in range(100):
                listed = schedules.ListSchedules(ppb.ListSchedulesRequest()).schedules
                if listed:
                    break
                await asyncio.sleep(0.1)
            assert [s.id for s in listed] == ["every-minute"]
            hooks = prpc.HookServiceStub(channel).ListHooks(ppb.ListHooksRequest(app_id=APP_ID))
            assert [h.id for h in hooks.hooks] == ["checkpoint"]
            ops = rpc.OperationServiceStub(channel)
            for _ in range(900):  # the next minute's run, up to 90 s
                runs = ops.ListOperations(pb.ListOperationsRequest(kind="backup")).operations
                done = [o for o in runs if o.phase in ("Completed", "Failed")]
                if done:
                    break
                await asyncio.sleep(0.1)
            assert done and done[0].phase == "Completed", runs
            listed_backups = prpc.BackupCatalogServiceStub(channel).ListBackups(
                ppb.ListBackupsRequest(bucket="default", app_id=APP_ID)
            )
            assert done[0].backup_id in {b.id for b in listed_backups.backups}
