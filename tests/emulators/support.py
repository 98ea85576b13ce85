"""Shared helpers for the emulator tests: a running emulator, error capture and builders."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config, watch
from kubernetes.client import ApiClient, ApiException

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube import KubeEmulator

NS = "default"
MERGE = "application/merge-patch+json"
REPO_ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running(tmp_path: Path, **kwargs: Any) -> Iterator[tuple[KubeEmulator, ApiClient]]:
    emulator = KubeEmulator(**kwargs)
    emulator.start()
    kubeconfig = tmp_path / f"kubeconfig-{id(emulator)}"
    emulator.write_kubeconfig(kubeconfig)
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield emulator, api
    finally:
        api.close()
        emulator.stop()


def error_of(call: Callable[[], Any]) -> tuple[int, KubeObject]:
    with pytest.raises(ApiException) as caught:
        call()
    return caught.value.status, json.loads(caught.value.body)


def raw_json(call: Callable[..., Any], *args: Any, **kwargs: Any) -> KubeObject:
    response = call(*args, _preload_content=False, **kwargs)
    body: KubeObject = json.loads(response.data)
    return body


def configmap(name: str, labels: dict[str, str] | None = None, **extra: Any) -> KubeObject:
    return {"metadata": {"name": name, "labels": labels or {}}, "data": {"k": "v"}, **extra}


def watch_events(
    func: Callable[..., Any], *args: Any, **kwargs: Any
) -> list[tuple[str, KubeObject]]:
    """Every event of a watch that ends by its own timeoutSeconds."""
    stream = watch.Watch().stream(func, *args, **kwargs)
    return [(event["type"], event["raw_object"]) for event in stream]


def names(events: list[tuple[str, KubeObject]]) -> list[tuple[str, str]]:
    return [(kind, obj["metadata"]["name"]) for kind, obj in events]


def wait_for(condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def pvc(
    name: str, storage_class: str | None = "vessel", volume_name: str | None = None
) -> KubeObject:
    spec: KubeObject = {
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": "5Gi"}},
    }
    if storage_class is not None:
        spec["storageClassName"] = storage_class
    if volume_name is not None:
        spec["volumeName"] = volume_name
    return {"metadata": {"name": name}, "spec": spec}


def pv(name: str, claim_ref: tuple[str, str]) -> KubeObject:
    return {
        "metadata": {"name": name},
        "spec": {
            "capacity": {"storage": "5Gi"},
            "accessModes": ["ReadWriteOnce"],
            "storageClassName": "vessel",
            "persistentVolumeReclaimPolicy": "Delete",
            "claimRef": {"namespace": claim_ref[0], "name": claim_ref[1]},
            "csi": {"driver": "vessel.io/csi", "volumeHandle": name},
        },
    }


def deployment(
    name: str, replicas: int | None = None, containers: list[KubeObject] | None = None
) -> KubeObject:
    spec: KubeObject = {
        "selector": {"matchLabels": {"app": name}},
        "template": {
            "metadata": {"labels": {"app": name}},
            "spec": {"containers": containers or [{"name": name, "image": f"{name}:1"}]},
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {"metadata": {"name": name}, "spec": spec}
