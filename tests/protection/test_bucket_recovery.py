"""Disaster recovery of Vessel itself: a fresh install (new NATS, no KV state, new clusters)
pointed at the bucket of a lost one lists its backups from the bucket alone and restores
one, bytes identical."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from tests.support import IN_CI, require
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


async def back_up_in_a_first_install(workdir: Path, s3: S3Server) -> tuple[str, dict[str, str]]:
    with Stack(workdir, shared_s3=s3, repository_password=PASSWORD) as first:
        a = KubeCluster(first.kubeconfigs["cluster-a"], "cluster-a")
        await a.create(first.storage_class())
        digest = await create_app_with_data(a)
        with grpc.insecure_channel(first.gateway) as channel:
            apps = rpc.AppServiceStub(channel)
            for _ in range(300):
                found = apps.ListApps(pb.ListAppsRequest()).apps
                if any(x.id == APP_ID and x.claims and x.claims[0].volume_name for x in found):
                    break
                await asyncio.sleep(0.1)
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
