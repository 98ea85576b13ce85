"""The PrometheusRule renders with the ServiceMonitor, and its alerts watch metrics the
services export under those names and labels."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

from tests.deploy.chart_support import NAMESPACE, Rendering
from tests.support import require
from vessel.telemetry import metrics


def _exported() -> dict[str, set[str]]:
    """Sample names the services export, with their label names."""
    found: dict[str, set[str]] = {}
    for family in REGISTRY.collect():
        for sample in family.samples:
            found.setdefault(sample.name, set()).update(sample.labels)
        found.setdefault(family.name, set())
    return found


def test_the_alerts_render_with_the_service_monitor_and_name_real_metrics(
    renderings: tuple[Rendering, ...],
) -> None:
    metrics.OPERATION_OLDEST_RUNNING.labels("backup")  # a child, so its labels show
    metrics.RPC_HANDLED.labels("unary", "s", "m", "OK")
    metrics.VOLUME_USED.labels("c", "ns", "claim", "node")
    metrics.APP_LAST_SUCCESS.labels("c.ns.app", "backup")
    metrics.SCHEDULE_INTERVAL.labels("nightly", "c.ns.app", "backup")
    metrics.VOLUME_CAPACITY.labels("c", "ns", "claim", "node")
    metrics.LAST_VERIFICATION_PASSED.labels("c.ns.app")
    exported = _exported()
    rendered = 0
    for r in renderings:
        rules = r.of_kind("PrometheusRule")
        if not r.of_kind("ServiceMonitor"):
            assert not rules, r.case
            continue
        rendered += 1
        (rule,) = rules
        alerts = {a["alert"]: a for g in rule["spec"]["groups"] for a in g["rules"]}
        assert set(alerts) == {
            "VesselOperationStuck",
            "VesselGatewayServerErrors",
            "VesselProtectionOverdue",
            "VesselVerificationFailed",
            "VesselVolumeAlmostFull",
        }
        assert "> 90 / 100" in alerts["VesselVolumeAlmostFull"]["expr"]
        stuck = alerts["VesselOperationStuck"]["expr"]
        assert "> 21600" in stuck and f'namespace="{NAMESPACE}"' in stuck
        for alert in alerts.values():
            for name in re.findall(r"\b((?:vessel|grpc)_[a-z_]+)\{", alert["expr"]):
                assert name in exported, (alert["alert"], name)
            for label in re.findall(r"by \(([a-z_]+)\)", alert["expr"]):
                name = re.findall(r"\b((?:vessel|grpc)_[a-z_]+)\{", alert["expr"])[0]
                assert label in exported[name], (alert["alert"], label)
    assert rendered, "no values case renders the ServiceMonitor"


def test_promtool_accepts_the_rules(renderings: tuple[Rendering, ...], tmp_path: Path) -> None:
    """`promtool check rules` (Prometheus's own checker) on the rendered groups."""
    promtool = shutil.which("promtool")
    require(None if promtool else "promtool (Debian package prometheus) is not installed")
    assert promtool is not None
    rule = next(rule for r in renderings for rule in r.of_kind("PrometheusRule"))
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
    checked = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=30
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout, checked.stdout
