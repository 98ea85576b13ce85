"""Prometheus metrics shared by every service (`vessel_` prefix, base units, bounded labels:
event types come from the catalog, never ids).

`serve(listen)` exposes /metrics, /healthz (the process answers) and /readyz (connected to
NATS) on `host:port` (setting `metrics_listen`, off by default).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

MESSAGES = Counter(
    "vessel_bus_messages_total",
    "Messages a service's consumers handled, by type and outcome (acked, retried, dead_lettered).",
    ["type", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "vessel_bus_handler_duration_seconds",
    "Time a handler took for one message, by message type.",
    ["type"],
    buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30, 120, 600, 3600),
)
PUBLISHED = Counter(
    "vessel_bus_published_total", "Events and commands published, by type.", ["type"]
)
TRANSFERS = Counter(
    "vessel_mover_transfers_total",
    "Volume transfers, by direction and result.",
    ["direction", "result"],
)
TRANSFER_BYTES = Counter(
    "vessel_mover_transfer_bytes_total",
    "Bytes of volume data backed up or restored.",
    ["direction"],
)
TRANSFER_SECONDS = Histogram(
    "vessel_mover_transfer_duration_seconds",
    "Duration of volume transfers.",
    ["direction"],
    buckets=(1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 12 * 3600),
)
RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the gateway (named as go-grpc-prometheus names them).",
    ["grpc_type", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs the gateway finished, by status code.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time the gateway took to answer an RPC (a stream: until it ended).",
    ["grpc_type", "grpc_service", "grpc_method"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120),
)
LOOP_UP = Gauge(
    "vessel_loop_up",
    "1 while a service's background loop runs, 0 while it waits to start again after failing.",
    ["loop"],
)
LOOP_FAILURES = Counter(
    "vessel_loop_failures_total", "Failures of a service's background loops.", ["loop"]
)
OPERATIONS_NOW = Gauge(
    "vessel_protection_operations_in_phase",
    "Operations in each phase now, by kind (ended ones included).",
    ["kind", "phase"],
)
OPERATION_OLDEST_RUNNING = Gauge(
    "vessel_protection_operation_oldest_running_seconds",
    "Age of the oldest operation of each kind that has not ended; 0 when none runs.",
    ["kind"],
)
OPERATIONS = Counter(
    "vessel_protection_operations_total",
    "Backups and restores that ended, by kind and phase.",
    ["kind", "phase"],
)
LAST_SUCCESS = Gauge(
    "vessel_protection_last_success_timestamp_seconds",
    "When the last backup or restore completed.",
    ["kind"],
)
APP_LAST_SUCCESS = Gauge(
    "vessel_app_last_success_timestamp_seconds",
    "When an app's last snapshot or backup that completed ended (Unix time).",
    ["app", "kind"],
)
BACKUP_LAST_VERIFIED = Gauge(
    "vessel_backup_last_verified_timestamp_seconds",
    "When a backup of the app last passed a restore verification (Unix time).",
    ["app"],
)
LAST_VERIFICATION_PASSED = Gauge(
    "vessel_backup_last_verification_passed",
    "1 when the app's newest restore verification passed, 0 when it failed.",
    ["app"],
)
SCHEDULE_INTERVAL = Gauge(
    "vessel_schedule_interval_seconds",
    "Seconds between two runs of an enabled schedule, by the app and kind it protects.",
    ["schedule", "app", "kind"],
)
BACKEND_FREE = Gauge(
    "vessel_backend_free_bytes", "Bytes a backend can still give to claims.", ["backend"]
)
VOLUMES = Gauge(
    "vessel_volumes", "Volumes the provisioner manages, by backend and state.", ["backend", "state"]
)
BACKEND_USED = Gauge(
    "vessel_backend_used_bytes", "Bytes the volumes of a backend actually use.", ["backend"]
)
CLAIM_LABELS = ["cluster", "namespace", "persistentvolumeclaim", "node"]
"""A volume by its claim, named as kubelet's `kubelet_volume_stats_*` name it (which
hostPath volumes never get)."""
VOLUME_USED = Gauge(
    "vessel_volume_used_bytes", "Bytes a claim's volume actually uses.", CLAIM_LABELS
)
VOLUME_CAPACITY = Gauge(
    "vessel_volume_capacity_bytes", "Bytes a claim's volume may hold (its size).", CLAIM_LABELS
)
RECONCILES = Counter(
    "vessel_provisioner_reconciles_total",
    "Reconciliations of claims, volumes and snapshots, by object kind and result "
    "(ok, retry, error).",
    ["kind", "result"],
)
RECONCILE_SECONDS = Histogram(
    "vessel_provisioner_reconcile_duration_seconds",
    "Time one reconciliation took, by object kind.",
    ["kind"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30),
)
VOLUME_BYTES = Gauge(
    "vessel_volume_allocated_bytes", "Bytes promised to volumes, by backend.", ["backend"]
)


def _not_ready() -> bool:
    return False


_ready: Callable[[], bool] = _not_ready


def ready_when(check: Callable[[], bool]) -> None:
    """What `/readyz` reports: the service is connected and serving."""
    global _ready
    _ready = check


class _Handler(BaseHTTPRequestHandler):
    """`/metrics` (Prometheus text), `/healthz` (the process answers), `/readyz`."""

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path in ("/healthz", "/livez"):
            self._send(200, b"ok\n", "text/plain")
        elif path == "/readyz":
            ready = _ready()
            self._send(200 if ready else 503, b"ok\n" if ready else b"not ready\n", "text/plain")
        elif path == "/metrics":
            self._send(200, generate_latest(REGISTRY), CONTENT_TYPE_LATEST)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass  # scrapes and probes every few seconds: not worth a log line


def serve(listen: str) -> None:
    """Serve /metrics, /healthz and /readyz on `host:port` in a background thread."""
    host, _, port = listen.rpartition(":")
    server = ThreadingHTTPServer((host or "0.0.0.0", int(port)), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True, name="metrics").start()
