"""Contracts shared by every service: the event/command catalog and its payload models."""
