"""`run_hooks` against the emulated API server: pods are chosen through the app's workloads,
containers by name and image regex; exec runs the commands on this host, so every
assertion below is about commands that really ran (or really did not)."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.protection.hooks import report, run_hooks
from tests.protection.hook_kit import (
    NS,
    app,
    container,
    deployment,
    fake_fsfreeze,
    hook,
    lines,
    namespace,
    record_to,
    running_pod,
)
from vessel.bus.nats_port import Bus
from vessel.contracts import subjects
from vessel.contracts.hooks import HookFailed
from vessel.kube.client import KubeCluster
from vessel_dev.emulators.kube import KubeEmulator

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
async def kube(kube_emulator: tuple[KubeEmulator, Path]) -> KubeCluster:
    cluster = KubeCluster(kube_emulator[1], "hooks")
    await namespace(cluster)
    return cluster


async def test_pods_of_the_workloads_and_containers_by_name_and_image(
    kube: KubeCluster, tmp_path: Path
) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    containers = [container("app", "registry.example/shop/web:2"), container("envoy", "envoy:1.30")]
    await running_pod(kube, "web-1", {"app": "web", "pod": "1"}, containers)
    await running_pod(kube, "web-2", {"app": "web", "pod": "2"}, containers)
    await running_pod(kube, "web-3", {"app": "web"}, containers, phase="Pending")
    await running_pod(kube, "other", {"app": "other"}, containers)
    log = tmp_path / "ran.log"
    hooks = [
        hook("by-name", container_name="^app$", command=[*record_to(log), "flush"]),
        hook("by-image", container_image=r"^envoy:", command=[*record_to(log), "drain"]),
        hook("both", container_name="app", container_image="mysql", command=record_to(log)),
        hook("later-stage", "post-snapshot", command=record_to(log)),
    ]

    outcome = await run_hooks(kube, app([web]), hooks, "pre-snapshot")

    assert lines(log) == [
        "web-1 envoy drain",
        "web-2 envoy drain",
        "web-1 app flush",
        "web-2 app flush",
    ]
    assert [(i.kind, i.name, i.namespace, i.state) for i in outcome.items] == [
        ("hook", "by-image@web-1/envoy", NS, "Completed"),
        ("hook", "by-image@web-2/envoy", NS, "Completed"),
        ("hook", "by-name@web-1/app", NS, "Completed"),
        ("hook", "by-name@web-2/app", NS, "Completed"),
    ]
    assert not outcome.failed and outcome.failures == []


async def test_set_based_workload_selectors_choose_pods(kube: KubeCluster, tmp_path: Path) -> None:
    expressions = [
        {"key": "tier", "operator": "In", "values": ["db", "cache"]},
        {"key": "canary", "operator": "DoesNotExist"},
    ]
    data = await deployment(kube, "data", {"app": "shop"}, expressions)
    for pod_name, labels in [
        ("db-1", {"tier": "db"}),
        ("cache-1", {"tier": "cache"}),
        ("web-1", {"tier": "web"}),
        ("db-canary", {"tier": "db", "canary": "yes"}),
    ]:
        await running_pod(kube, pod_name, {"app": "shop"} | labels, [container("c", "img:1")])
    log = tmp_path / "ran.log"
    await run_hooks(kube, app([data]), [hook("h", command=record_to(log))], "pre-snapshot")
    assert sorted(lines(log)) == ["cache-1 c ", "db-1 c "]


async def test_an_app_grouped_by_label_selects_pods_by_its_label(
    kube: KubeCluster, tmp_path: Path
) -> None:
    await running_pod(kube, "db-0", {"app.kubernetes.io/instance": "shop"}, [container("db", "pg")])
    await running_pod(kube, "cache", {"app": "cache"}, [container("db", "pg")])
    log = tmp_path / "ran.log"
    shop = app([], grouping="label", selector={"app.kubernetes.io/instance": "shop"})
    outcome = await run_hooks(kube, shop, [hook("h", command=record_to(log))], "pre-snapshot")
    assert lines(log) == ["db-0 db "]
    assert [i.name for i in outcome.items] == ["h@db-0/db"]


async def test_fail_policy_fails_continue_policy_only_records(
    kube: KubeCluster, tmp_path: Path
) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(kube, "web-1", {"app": "web"}, [container("app", "web:1")])
    failing = ["sh", "-c", "echo 'lock table failed: busy' >&2; exit 3"]
    log = tmp_path / "ran.log"

    tolerated = await run_hooks(
        kube,
        app([web]),
        [hook("a", "post-backup", command=failing, on_failure="continue")],
        "post-backup",
    )
    assert not tolerated.failed
    assert [(i.name, i.state) for i in tolerated.items] == [("a@web-1/app", "Failed")]
    assert "exit 3" in tolerated.items[0].message and "busy" in tolerated.items[0].message
    (failure,) = tolerated.failures
    assert (failure.reason, failure.exit_code, failure.pod, failure.container) == (
        "exit",
        3,
        "web-1",
        "app",
    )
    assert failure.stderr_tail == "lock table failed: busy\n"
    assert failure.on_failure == "continue" and failure.app_id == "c1.shop.shop"

    post = await run_hooks(
        kube,
        app([web]),
        [
            hook("a", "post-backup", command=failing),
            hook("b", "post-backup", command=record_to(log)),
        ],
        "post-backup",
    )
    assert post.failed  # and yet a post-stage runs every hook, so everything resumes
    assert [i.state for i in post.items] == ["Failed", "Completed"]
    assert lines(log) == ["web-1 app "]


async def test_a_failed_pre_hook_stops_the_stage(kube: KubeCluster, tmp_path: Path) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(kube, "web-1", {"app": "web"}, [container("app", "web:1")])
    log = tmp_path / "ran.log"
    hooks = [
        hook("2-after", "pre-backup", command=record_to(log)),
        hook("1-fails", "pre-backup", command=["false"]),
    ]
    outcome = await run_hooks(kube, app([web]), hooks, "pre-backup")
    assert outcome.failed
    assert [(i.name, i.state) for i in outcome.items] == [("1-fails@web-1/app", "Failed")]
    assert lines(log) == []


async def test_timeout_ends_the_run_in_about_its_timeout(kube: KubeCluster) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(kube, "web-1", {"app": "web"}, [container("app", "web:1")])
    started = time.monotonic()
    outcome = await run_hooks(
        kube,
        app([web]),
        [hook("slow", command=["sleep", "5"], timeout_seconds=1)],
        "pre-snapshot",
    )
    assert 0.9 < time.monotonic() - started < 2.5
    assert outcome.failed
    assert outcome.items[0].state == "Failed" and "timed out after 1s" in outcome.items[0].message
    assert (outcome.failures[0].reason, outcome.failures[0].exit_code) == ("timeout", None)


async def test_missing_program_is_a_failed_run(kube: KubeCluster) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(kube, "web-1", {"app": "web"}, [container("app", "web:1")])
    outcome = await run_hooks(
        kube, app([web]), [hook("x", command=["no-such-program-here"])], "pre-snapshot"
    )
    assert outcome.failed and outcome.failures[0].reason == "error"
    assert "no-such-program-here" in outcome.items[0].message


async def test_fsfreeze_freezes_and_thaws_the_apps_claim_mounts(
    kube: KubeCluster, tmp_path: Path
) -> None:
    env, log = fake_fsfreeze(tmp_path)
    web = await deployment(kube, "web", {"app": "web"})
    mounts = {"data": "/var/lib/data", "wal": "/var/lib/wal", "scratch": "/tmp/scratch"}
    await running_pod(
        kube,
        "web-1",
        {"app": "web"},
        [container("db", "pg:16", env, mounts), container("exporter", "exp:1", env)],
        claims={"data": "data-web-1", "wal": "wal-web-1", "scratch": "not-this-apps"},
    )
    shop = app([web], claims=["data-web-1", "wal-web-1"])
    freeze = hook("freeze", "pre-snapshot", container_name="^db$|exporter", builtin="fsfreeze")
    thaw = hook("thaw", "post-snapshot", container_name="db|exporter", builtin="fsfreeze")

    pre = await run_hooks(kube, shop, [freeze, thaw], "pre-snapshot")
    assert lines(log) == ["web-1 --freeze /var/lib/data", "web-1 --freeze /var/lib/wal"]
    assert not pre.failed
    assert [(m.pod, m.container, m.path) for m in pre.frozen] == [
        ("web-1", "db", "/var/lib/data"),
        ("web-1", "db", "/var/lib/wal"),
    ]
    assert [(i.name, i.state) for i in pre.items] == [
        ("freeze@web-1/db", "Completed"),
        ("freeze@web-1/exporter", "Skipped"),  # it mounts no claim of the app
    ]

    post = await run_hooks(kube, shop, [freeze, thaw], "post-snapshot")
    assert lines(log)[2:] == ["web-1 --unfreeze /var/lib/data", "web-1 --unfreeze /var/lib/wal"]
    assert not post.failed and post.frozen == []


async def test_a_later_failing_pre_hook_unfreezes_what_was_frozen(
    kube: KubeCluster, tmp_path: Path
) -> None:
    env, log = fake_fsfreeze(tmp_path)
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(
        kube,
        "web-1",
        {"app": "web"},
        [container("db", "pg:16", env, {"data": "/data"})],
        claims={"data": "data-web-1"},
    )
    shop = app([web], claims=["data-web-1"])
    hooks = [
        hook("a-freeze", container_name="db", builtin="fsfreeze"),
        hook("b-quiesce", container_name="db", command=["sh", "-c", "echo no >&2; exit 2"]),
    ]
    outcome = await run_hooks(kube, shop, hooks, "pre-snapshot")
    assert outcome.failed and outcome.frozen == []
    assert lines(log) == ["web-1 --freeze /data", "web-1 --unfreeze /data"]
    assert [(i.name, i.state) for i in outcome.items] == [
        ("a-freeze@web-1/db", "Completed"),
        ("b-quiesce@web-1/db", "Failed"),
        ("a-freeze@web-1/db", "Completed"),
    ]
    assert "unfroze /data" in outcome.items[2].message


async def test_a_freeze_failing_half_way_thaws_the_mounts_it_froze(
    kube: KubeCluster, tmp_path: Path
) -> None:
    env, log = fake_fsfreeze(tmp_path, fail_on="/wal")
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(
        kube,
        "web-1",
        {"app": "web"},
        [container("db", "pg:16", env, {"data": "/data", "wal": "/wal"})],
        claims={"data": "data-web-1", "wal": "wal-web-1"},
    )
    shop = app([web], claims=["data-web-1", "wal-web-1"])
    outcome = await run_hooks(
        kube, shop, [hook("freeze", container_name="db", builtin="fsfreeze")], "pre-snapshot"
    )
    assert outcome.failed and outcome.frozen == []
    assert lines(log) == ["web-1 --freeze /data", "web-1 --freeze /wal", "web-1 --unfreeze /data"]
    assert "cannot freeze" in outcome.failures[0].stderr_tail


async def test_failures_are_published_as_hook_failed(
    kube: KubeCluster, bus: Bus, tmp_path: Path
) -> None:
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(kube, "web-1", {"app": "web"}, [container("app", "web:1")])
    hook_id = f"h-{uuid.uuid4().hex[:8]}"
    failing = ["sh", "-c", "echo 'disk full' >&2; exit 28"]
    outcome = await run_hooks(
        kube, app([web]), [hook(hook_id, on_failure="continue", command=failing)], "pre-snapshot"
    )
    since = datetime.now(UTC)
    await report(bus, outcome, operation_id="snap-1")
    published: list[HookFailed] = []

    async def read() -> None:
        async for _, event in bus.tail(subjects.HOOK_FAILED.subject, since=since):
            if event.data["hook_id"] == hook_id:
                published.append(HookFailed.model_validate(event.data))
                return

    await asyncio.wait_for(read(), timeout=10)
    (failed,) = published
    assert (failed.operation_id, failed.exit_code, failed.reason) == ("snap-1", 28, "exit")
    assert (failed.pod, failed.container, failed.stage) == ("web-1", "app", "pre-snapshot")
    assert failed.stderr_tail == "disk full\n" and failed.on_failure == "continue"


async def test_an_interrupted_pre_stage_unfreezes(kube: KubeCluster, tmp_path: Path) -> None:
    env, log = fake_fsfreeze(tmp_path)
    web = await deployment(kube, "web", {"app": "web"})
    await running_pod(
        kube,
        "web-1",
        {"app": "web"},
        [container("db", "pg:16", env, {"data": "/data"})],
        claims={"data": "data-web-1"},
    )
    hooks = [
        hook("a-freeze", container_name="db", builtin="fsfreeze"),
        hook("b-slow", container_name="db", command=["sleep", "5"]),
    ]
    stage = asyncio.create_task(
        run_hooks(kube, app([web], claims=["data-web-1"]), hooks, "pre-snapshot")
    )
    for _ in range(200):  # until the freeze ran, then b-slow is running
        if lines(log) == ["web-1 --freeze /data"]:
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.3)
    stage.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stage
    assert lines(log) == ["web-1 --freeze /data", "web-1 --unfreeze /data"]
