"""Every service's metrics listener also answers liveness and readiness probes."""

from __future__ import annotations

import urllib.error
import urllib.request

from vessel.telemetry import metrics
from vessel_dev.rig.processes import free_port


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_health_readiness_and_metrics() -> None:
    ready = [False]
    metrics.ready_when(lambda: ready[0])
    address = f"127.0.0.1:{free_port()}"
    metrics.serve(address)
    base = f"http://{address}"
    assert get(f"{base}/healthz") == (200, "ok\n")
    assert get(f"{base}/readyz") == (503, "not ready\n")
    ready[0] = True
    assert get(f"{base}/readyz") == (200, "ok\n")
    status, text = get(f"{base}/metrics")
    assert status == 200 and "vessel_bus_messages_total" in text
    assert get(f"{base}/nothing")[0] == 404
