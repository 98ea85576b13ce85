"""Node-local backends: with a node name, every PV the provisioner creates requires that
node (`kubernetes.io/hostname`), so pods land where the data is; without one, none."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from services.provisioner.adapters.dirfs import DirBackend
from services.provisioner.controller import Provisioner
from tests.provisioner.lab import Lab
from vessel.config import ClusterConfig

AFFINITY = {
    "required": {
        "nodeSelectorTerms": [
            {
                "matchExpressions": [
                    {"key": "kubernetes.io/hostname", "operator": "In", "values": ["node-a"]}
                ]
            }
        ]
    }
}


def test_the_node_name_defaults_to_the_node_name_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NODE_NAME", "node-a")
    assert ClusterConfig(id="eu-1", kubeconfig=tmp_path).node_name == "node-a"
    assert ClusterConfig(id="eu-1", kubeconfig=tmp_path, node_name="b").node_name == "b"
    monkeypatch.delenv("NODE_NAME")
    assert ClusterConfig(id="eu-1", kubeconfig=tmp_path).node_name is None
    text = yaml.safe_dump({"id": "eu-1", "kubeconfig": str(tmp_path), "node_name": "n-1"})
    assert ClusterConfig.model_validate(yaml.safe_load(text)).node_name == "n-1"


async def _with_node(lab: Lab, node: str | None) -> Provisioner:
    provisioner = await lab.start()
    provisioner.env.node_name = node  # as `Provisioner(..., node_name=...)` sets it
    return provisioner


async def test_pvs_require_the_provisioners_node(lab: Lab, dir_backend: DirBackend) -> None:
    await _with_node(lab, "node-a")
    sc = await lab.storage_class("local")
    await lab.claim("data", sc)
    _, pv = await lab.bound("data")
    assert pv["spec"]["nodeAffinity"] == AFFINITY
    await lab.claim("clone", sc, dataSource={"kind": "PersistentVolumeClaim", "name": "data"})
    _, cloned = await lab.bound("clone")
    assert cloned["spec"]["nodeAffinity"] == AFFINITY


async def test_without_a_node_name_pvs_have_no_affinity(lab: Lab) -> None:
    await _with_node(lab, None)
    sc = await lab.storage_class("anywhere")
    await lab.claim("data", sc)
    _, pv = await lab.bound("data")
    assert "nodeAffinity" not in pv["spec"]


async def test_the_constructor_takes_the_node_name(lab: Lab) -> None:
    volumes, snapshots = await lab.bus.kv("volumes"), await lab.bus.kv("snapshots")
    provisioner = Provisioner(
        lab.cluster, lab.kube, lab.bus, volumes, lab.backends, snapshots=snapshots, node_name="n"
    )
    assert provisioner.env.node_name == "n"
