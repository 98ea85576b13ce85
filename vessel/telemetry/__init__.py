"""Telemetry: structured logs, traces, metrics, and tracing of gRPC calls."""
