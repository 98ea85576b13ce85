"""Checks of the Helm chart charts/vessel as rendered: network, disruptions, monitoring.

NetworkPolicies (every pod isolated, egress only where a service talks, OTLP when set),
PodDisruptionBudgets and the ServiceMonitor.
Rendering and shared helpers: `tests/deploy/chart_support.py`.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.deploy.chart_support import (
    MONITORING,
    NAMESPACE,
    OPENS_BUCKETS,
    USES_KUBE_API,
    Rendering,
    _default_values,
    _env,
    _pods,
    _selects,
)
from vessel.config import VesselSettings

# --- network, disruptions, monitoring ----------------------------------------------------


def _port(url_or_endpoint: str, default: int) -> int:
    match = re.search(r":(\d+)$", url_or_endpoint.split(",")[0].split("://")[-1].split("/")[0])
    return int(match.group(1)) if match else default


def _rule_ports(rules: list[dict[str, Any]]) -> set[tuple[str, int]]:
    return {(p.get("protocol", "TCP"), p["port"]) for rule in rules for p in rule.get("ports", [])}


def test_network_policies_isolate_every_pod(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        values = r.effective
        policies = r.of_kind("NetworkPolicy")
        if not values["networkPolicy"]["enabled"]:
            assert not policies, r.case
            continue
        monitored = bool(r.of_kind("ServiceMonitor"))
        nats = ("TCP", _port(values["nats"]["url"], 4222))
        s3 = ("TCP", _port(values["s3"]["endpoint"], 443 if values["s3"]["secure"] else 80))
        api = {("TCP", p) for p in values["networkPolicy"]["apiServerPorts"]}
        dns = {("UDP", 53), ("TCP", 53)}
        for component, _workload, pod in _pods(r):
            where = f"{r.case}: {component}"
            labels = pod["metadata"]["labels"]
            mine = [
                p for p in policies if _selects(p["spec"]["podSelector"]["matchLabels"], labels)
            ]
            assert len(mine) == 1, f"{where}: {len(mine)} NetworkPolicies select it"
            spec = mine[0]["spec"]
            assert sorted(spec["policyTypes"]) == ["Egress", "Ingress"], where
            ingress = _rule_ports(spec.get("ingress", []))
            expected_in = {("TCP", 50051)} if component == "gateway" else set()
            if monitored:
                expected_in.add(("TCP", values["serviceMonitor"]["port"]))
            assert ingress == expected_in, f"{where}: ingress {ingress}"
            assert all(rule.get("ports") for rule in spec.get("ingress", [])), where
            egress = _rule_ports(spec["egress"])
            expected_out = dns | {nats}
            if values["otlpEndpoint"]:
                expected_out.add(("TCP", _port(values["otlpEndpoint"].rstrip("/"), 0)))
            if component in OPENS_BUCKETS:
                expected_out.add(s3)
            if component in USES_KUBE_API:
                expected_out |= api
            assert egress == expected_out | _rule_ports(values["networkPolicy"]["extraEgress"]), (
                f"{where}: egress {sorted(egress)}, expected {sorted(expected_out)}"
            )
            if values["otlpEndpoint"]:
                port = _port(values["otlpEndpoint"].rstrip("/"), 0)
                (rule,) = [e for e in spec["egress"] if _rule_ports([e]) == {("TCP", port)}]
                assert rule.get("to", []) == values["networkPolicy"]["otlpTo"], where


def test_otlp_endpoint_reaches_every_service_only_when_set(
    renderings: tuple[Rendering, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    exported = 0
    for r in renderings:
        endpoint = r.effective["otlpEndpoint"]
        for component, _workload, pod in _pods(r):
            (container,) = pod["spec"]["containers"]
            env = _env(container)
            if not endpoint:
                assert "VESSEL_OTLP_ENDPOINT" not in env, f"{r.case}: {component}"
                continue
            value = env["VESSEL_OTLP_ENDPOINT"]["value"]
            assert value == endpoint, f"{r.case}: {component}"
            # The services accept it: the setting validates the same way they load it.
            monkeypatch.setenv("VESSEL_OTLP_ENDPOINT", value)
            assert VesselSettings().otlp_endpoint == endpoint, f"{r.case}: {component}"
            exported += 1
    assert exported, "no ci values file sets otlpEndpoint"


def test_every_deployment_has_a_disruption_budget_that_never_blocks_drains(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in renderings:
        budgets = r.of_kind("PodDisruptionBudget")
        for deployment in r.of_kind("Deployment"):
            labels = deployment["spec"]["template"]["metadata"]["labels"]
            mine = [b for b in budgets if _selects(b["spec"]["selector"]["matchLabels"], labels)]
            name = deployment["metadata"]["name"]
            assert len(mine) == 1, f"{r.case}: {name} has {len(mine)} PodDisruptionBudgets"
            spec = mine[0]["spec"]
            if "maxUnavailable" in spec:
                assert int(spec["maxUnavailable"]) >= 1, f"{r.case}: {name} can never move"
            else:
                assert int(spec["minAvailable"]) < deployment["spec"]["replicas"], name
        assert len(budgets) == len(r.of_kind("Deployment")), f"{r.case}: stray budgets"


def test_service_monitor_only_when_enabled_and_the_cluster_serves_it(
    renderings: tuple[Rendering, ...],
) -> None:
    assert _default_values()["serviceMonitor"]["enabled"] is False, "on by default"
    rendered_with_monitor = 0
    for r in renderings:
        values = r.effective["serviceMonitor"]
        monitors = r.of_kind("ServiceMonitor")
        wanted = values["enabled"] and r.monitoring
        assert len(monitors) == (1 if wanted else 0), f"{r.case} (capability: {r.monitoring})"
        metrics_ports = [
            p
            for _c, _w, pod in _pods(r)
            for c in pod["spec"]["containers"]
            for p in c.get("ports", [])
            if p["name"] == "metrics"
        ]
        assert bool(metrics_ports) is wanted, f"{r.case}: metrics ports without a monitor"
        if not wanted:
            continue
        rendered_with_monitor += 1
        (monitor,) = monitors
        assert monitor["apiVersion"] == MONITORING
        labels = monitor["metadata"]["labels"]
        assert all(labels.get(k) == v for k, v in values["labels"].items())
        services = [
            s
            for s in r.of_kind("Service")
            if _selects(monitor["spec"]["selector"]["matchLabels"], s["metadata"]["labels"])
        ]
        assert len(services) == 1, f"{r.case}: the ServiceMonitor selects {len(services)}"
        ports = {p["name"]: p for p in services[0]["spec"]["ports"]}
        for endpoint in monitor["spec"]["endpoints"]:
            assert endpoint["port"] in ports, endpoint
            assert endpoint["path"] == values["path"]
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert rendered_with_monitor, "no ci values file renders the ServiceMonitor"
