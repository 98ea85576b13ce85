"""pods/exec over WebSocket, driven by the official client's `kubernetes.stream`."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client import ApiException
from kubernetes.stream import stream

from tests.emulators.support import NS, running
from vessel.kube.objects import KubeObject

pytestmark = pytest.mark.timeout(30)


def pod(name: str, *containers: KubeObject) -> KubeObject:
    return {"metadata": {"name": name}, "spec": {"containers": list(containers)}}


def container(name: str, env: dict[str, str] | None = None) -> KubeObject:
    spec: KubeObject = {"name": name, "image": f"example/{name}:1"}
    if env:
        spec["env"] = [{"name": k, "value": v} for k, v in env.items()]
    return spec


def open_exec(core: client.CoreV1Api, name: str, command: list[str], **kwargs: Any) -> Any:
    return stream(
        core.connect_get_namespaced_pod_exec,
        name,
        NS,
        command=command,
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
        _preload_content=False,
        **kwargs,
    )


def run(core: client.CoreV1Api, name: str, command: list[str], **kwargs: Any) -> tuple[Any, ...]:
    """(stdout, stderr, return code, raw status) of one exec, read channel by channel."""
    ws = open_exec(core, name, command, **kwargs)
    out, err = [], []
    while ws.is_open():
        ws.update(timeout=1)
        out.append(ws.read_stdout(timeout=0))
        err.append(ws.read_stderr(timeout=0))
    status = json.loads(ws.read_channel(3))
    ws.close()
    # returncode reads channel 3 again; it was consumed above, so compute it the same way
    code = 0 if status["status"] == "Success" else int(status["details"]["causes"][0]["message"])
    return "".join(out), "".join(err), code, status


def test_stdout_stderr_and_success_status(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("web", container("app")))
    out, err, code, status = run(
        core, "web", ["sh", "-c", "echo hello; echo oops >&2; printf 'a b'"], container="app"
    )
    assert (out, err, code) == ("hello\na b", "oops\n", 0)
    assert status == {"metadata": {}, "status": "Success"}


def test_nonzero_exit_is_reported_as_the_real_server_does(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("web", container("app")))
    out, err, code, status = run(core, "web", ["sh", "-c", "echo bad >&2; exit 3"])
    assert (out, err, code) == ("", "bad\n", 3)
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    # the client's own reading of channel 3 agrees
    ws = open_exec(core, "web", ["false"])
    ws.run_forever(timeout=10)
    assert ws.returncode == 1


def test_preloaded_stream_returns_the_output(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("web", container("app")))
    output = stream(
        core.connect_get_namespaced_pod_exec,
        "web",
        NS,
        command=["echo", "one", "two"],
        stdout=True,
        stderr=True,
        stdin=False,
        tty=False,
    )
    assert output == "one two\n"


def test_container_env_and_a_per_container_scratch_directory(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(
        NS, pod("web", container("app", {"GREETING": "hi there"}), container("side"))
    )
    script = 'echo "$GREETING|$HOSTNAME"; pwd; touch marker; ls'
    out, _, code, _ = run(core, "web", ["sh", "-c", script], container="app")
    greeting, cwd, listing = out.splitlines()
    assert code == 0 and greeting == "hi there|web" and listing == "marker"
    side_out, _, _, _ = run(
        core, "web", ["sh", "-c", 'echo "[$GREETING]"; pwd; ls'], container="side"
    )
    side_env, side_cwd, *side_listing = side_out.splitlines()
    assert side_env == "[]" and side_cwd != cwd and side_listing == []
    assert Path(cwd).name == "app" and Path(side_cwd).name == "side"
    again, _, _, _ = run(core, "web", ["ls"], container="app")
    assert again == "marker\n"  # the scratch directory persists like a container's filesystem


def test_unknown_pod_is_404_and_unknown_container_400(core: client.CoreV1Api) -> None:
    with pytest.raises(ApiException) as missing:
        open_exec(core, "nope", ["true"])
    assert "Handshake status 404" in str(missing.value.reason)
    assert 'pods \\"nope\\" not found' in str(missing.value.reason)
    core.create_namespaced_pod(NS, pod("web", container("app"), container("side")))
    with pytest.raises(ApiException) as wrong:
        open_exec(core, "web", ["true"], container="db")
    assert "Handshake status 400" in str(wrong.value.reason)
    assert "container db is not valid for pod web" in str(wrong.value.reason)
    with pytest.raises(ApiException) as ambiguous:
        open_exec(core, "web", ["true"])
    assert "a container name must be specified for pod web, choose one of: [app side]" in str(
        ambiguous.value.reason
    )


def test_missing_executable_is_an_internal_error_status(core: client.CoreV1Api) -> None:
    core.create_namespaced_pod(NS, pod("web", container("app")))
    ws = open_exec(core, "web", ["no-such-command-in-vessel"])
    ws.run_forever(timeout=10)
    status = json.loads(ws.read_channel(3))
    assert status["status"] == "Failure" and status["reason"] == "InternalError"
    assert "no-such-command-in-vessel" in status["message"]


def test_closing_the_stream_ends_the_command(core: client.CoreV1Api, tmp_path: Path) -> None:
    core.create_namespaced_pod(NS, pod("web", container("app")))
    marker = tmp_path / "finished"
    started = time.monotonic()
    ws = open_exec(core, "web", ["sh", "-c", f"echo started; sleep 2; touch {marker}"])
    while "started" not in ws.read_stdout(timeout=5):
        pass
    ws.close()
    assert time.monotonic() - started < 1.5
    time.sleep(max(0.0, started + 2.5 - time.monotonic()))
    assert not marker.exists()  # the whole process group was killed, sleep and all


def test_exec_is_refused_unless_the_emulator_allows_it(tmp_path: Path) -> None:
    with running(tmp_path) as (_, api):
        core = client.CoreV1Api(api)
        core.create_namespaced_pod(NS, pod("closed", container("app")))
        with pytest.raises(ApiException, match=r"403|Forbidden"):
            run(core, "closed", ["true"], container="app")
