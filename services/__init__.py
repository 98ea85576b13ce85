"""Vessel services: each one a separate process that talks to the others only over NATS."""
