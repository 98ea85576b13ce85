"""An agent release that joins its hub with a token runs the cluster's own NATS leaf node:
it dials the hub's leaf port as the cluster with the token from a Secret, only the
release's pods reach it, it runs unprivileged with no API token, and the services use it
with the hub's JetStream domain. Without a hub address or a token Secret the chart says
which is missing."""

from __future__ import annotations

import pytest
import yaml

from tests.deploy.chart_support import ROOT as REPO
from tests.deploy.chart_support import Rendering, _env, _render_files, _yaml

JOINING = REPO / "charts" / "vessel" / "ci" / "agent-join-values.yaml"


def _joining(renderings: tuple[Rendering, ...]) -> list[Rendering]:
    found = [r for r in renderings if r.case == JOINING.name]
    assert found, "the agent-join values case is rendered"
    return found


def test_the_leaf_dials_the_hub_as_its_cluster_with_the_token(
    renderings: tuple[Rendering, ...],
) -> None:
    for r in _joining(renderings):
        leaf = r.one("Deployment", r.name("leaf"))
        pod = leaf["spec"]["template"]["spec"]
        (container,) = pod["containers"]
        env = _env(container)
        token = env["VESSEL_JOIN_TOKEN"]["valueFrom"]["secretKeyRef"]
        assert token == {"name": "vessel-join", "key": "token"}
        url = env["VESSEL_LEAF_URL"]["value"]
        assert url == '"nats-leaf://edge-1:$(VESSEL_JOIN_TOKEN)@nats-hub.example.com:7422"'
        config = r.one("ConfigMap", r.name("leaf"))["data"]["nats.conf"]
        assert "remotes = [ { url: $VESSEL_LEAF_URL } ]" in config
        assert "jetstream" not in config  # JetStream stays on the hub
        assert pod["automountServiceAccountToken"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False
        assert security["readOnlyRootFilesystem"] is True
        assert security["capabilities"] == {"drop": ["ALL"]}
        (policy,) = [
            p for p in r.of_kind("NetworkPolicy") if p["metadata"]["name"] == r.name("leaf")
        ]
        (ingress,) = policy["spec"]["ingress"]
        assert ingress["ports"] == [{"protocol": "TCP", "port": 4222}]
        release = ingress["from"][0]["podSelector"]["matchLabels"]
        assert release == {
            "app.kubernetes.io/name": "vessel",
            "app.kubernetes.io/instance": "backup",
        }
        ports = {p["port"] for rule in policy["spec"]["egress"] for p in rule["ports"]}
        assert ports == {53, 7422}
        settings = _yaml_settings(r)
        assert settings["nats_url"] == f"nats://{r.name('leaf')}:4222"
        assert settings["nats_jetstream_domain"] == "hub"


def _yaml_settings(r: Rendering) -> dict[str, object]:
    (config,) = [c for c in r.of_kind("ConfigMap") if "vessel.yaml" in c.get("data", {})]
    settings: dict[str, object] = yaml.safe_load(config["data"]["vessel.yaml"])
    return settings


def test_no_leaf_runs_unless_an_agent_asks_for_one(renderings: tuple[Rendering, ...]) -> None:
    for r in renderings:
        leaves = [d for d in r.of_kind("Deployment") if d["metadata"]["name"] == r.name("leaf")]
        assert len(leaves) == (1 if r.case == JOINING.name else 0), r.case


@pytest.mark.parametrize(
    ("missing", "said"),
    [("hubUrl", "leaf.hubUrl: the hub's leaf port"), ("joinTokenSecret", "leaf.joinTokenSecret")],
)
def test_a_leaf_without_its_hub_or_token_is_refused(missing: str, said: str) -> None:
    values = _yaml(JOINING)
    values["leaf"][missing] = ""
    with pytest.raises(Exception, match=said):
        _render_files(values)


def test_a_hubs_discovery_takes_the_join_secret() -> None:
    values = {**_yaml(REPO / "charts" / "vessel" / "ci" / "hub-values.yaml")}
    values["discovery"] = {"joinSecret": "vessel-hub-join"}
    files = _render_files(values)
    text = files["vessel/templates/discovery.yaml"]
    for variable, key in (
        ("VESSEL_NATS_CALLOUT_SEED", "calloutSeed"),
        ("VESSEL_NATS_SYSTEM_PASSWORD", "systemPassword"),
    ):
        assert f"name: {variable}" in text
        assert f"name: vessel-hub-join\n                  key: {key}" in text
