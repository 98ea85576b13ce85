"""Vessel shared package: contracts, bus, config, telemetry, ports, API and CLI."""
