"""A message of the catalog: an event or a command, its CloudEvents type, its subject and
its payload model, and the naming rules every entry follows."""

from __future__ import annotations

import builtins
from dataclasses import dataclass
from typing import Literal

from vessel.contracts.models import Payload


@dataclass(frozen=True)
class Message:
    kind: Literal["event", "command"]
    type: str
    subject: str
    """Subject, possibly with a `{cluster}` placeholder."""
    model: builtins.type[Payload]
    description: str
    legacy_subject: str = ""
    """The subject older versions published it on, still consumed during an upgrade."""

    def subject_for(self, cluster: str | None = None) -> str:
        if "{cluster}" in self.subject:
            if not cluster:
                raise ValueError(f"{self.type} needs a cluster for its subject")
            return self.subject.format(cluster=cluster)
        return self.subject

    @property
    def filter_subject(self) -> str:
        """The subject with placeholders as wildcards, for consumers of every cluster."""
        return self.subject.replace("{cluster}", "*")


CLUSTER_DOMAINS = ("provisioner", "mover", "discovery")
"""Domains whose events come from a cluster's agents: their subjects carry the cluster
(`vessel.evt.<domain>.<cluster>.<entity>.<verb>`), so NATS permissions can hold each
cluster to its own (docs/design/0007-hub-and-agents.md)."""


def _event(domain_entity_verb: str, model: type[Payload], description: str) -> Message:
    domain, _, entity_verb = domain_entity_verb.partition(".")
    plain = f"vessel.evt.{domain_entity_verb}"
    if domain not in CLUSTER_DOMAINS:
        return Message("event", f"io.vessel.{domain_entity_verb}.v1", plain, model, description)
    return Message(
        "event",
        f"io.vessel.{domain_entity_verb}.v1",
        f"vessel.evt.{domain}.{{cluster}}.{entity_verb}",
        model,
        description,
        legacy_subject=plain,
    )


def _command(
    service: str, verb: str, model: type[Payload], description: str, per_cluster: bool
) -> Message:
    subject = (
        f"vessel.cmd.{service}.{{cluster}}.{verb}"
        if per_cluster
        else f"vessel.cmd.{service}.{verb}"
    )
    return Message("command", f"io.vessel.cmd.{service}.{verb}.v1", subject, model, description)
