"""The services of vessel.proto: apps, backups, restores and operations."""
