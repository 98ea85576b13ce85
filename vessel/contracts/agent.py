"""Request/reply payloads of a cluster agent: Kubernetes API work done inside a cluster on
behalf of the hub (docs/design/0007-hub-and-agents.md).

Subjects: `vessel.query.agent.<cluster>.<verb>`, one verb per Kubernetes call the hub's
flows make, so NATS permissions can allow or refuse each. The reply is a `KubeAnswer`:
the result, or the class of the Kubernetes error (`NotFound`, `Conflict`...) and its
message, which the caller raises again as the same error of the Kubernetes port.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, model_validator

from vessel.contracts.models import Payload

Verb = Literal["get", "list", "create", "replace", "patch", "delete", "exec"]
VERBS: tuple[Verb, ...] = ("get", "list", "create", "replace", "patch", "delete", "exec")
EXEC_MAX_SECONDS = 3600.0
"""The longest command an agent runs for a caller (a hook's timeout is at most this)."""

_NEEDS: dict[str, tuple[str, ...]] = {
    "get": ("api_version", "kind", "name"),
    "list": ("api_version", "kind"),
    "create": ("object",),
    "replace": ("object",),
    "patch": ("api_version", "kind", "name", "patch"),
    "delete": ("api_version", "kind", "name"),
    "exec": ("namespace", "pod", "container", "command"),
}


class KubeCall(Payload):
    """One Kubernetes API call; which fields it needs depends on the subject's verb."""

    verb: Verb
    api_version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str | None = None
    label_selector: str | None = None
    object: dict[str, Any] | None = Field(None, description="create / replace: the object")
    patch: dict[str, Any] | None = Field(None, description="patch: a JSON merge patch")
    status: bool = Field(False, description="patch: the status subresource")
    pod: str = ""
    container: str = ""
    command: list[str] = Field(default_factory=list)
    timeout: float = Field(30.0, gt=0, le=EXEC_MAX_SECONDS, description="exec: seconds")

    @model_validator(mode="after")
    def _complete(self) -> KubeCall:
        missing = [f for f in _NEEDS[self.verb] if not getattr(self, f)]
        if missing:
            raise ValueError(f"a {self.verb} call needs {', '.join(missing)}")
        if self.object is not None and not {"apiVersion", "kind"} <= self.object.keys():
            raise ValueError("object needs apiVersion and kind")
        return self


class KubeAnswer(Payload):
    """A call's outcome: `error_class` empty on success. Fields an older caller does not
    know are ignored, so an agent may add some."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    object: dict[str, Any] | None = Field(None, description="get (None: not found), writes")
    items: list[dict[str, Any]] = Field(default_factory=list, description="list")
    resource_version: str = Field("", description="list: where a watch would resume")
    exit_code: int = 0
    stdout: str = ""
    stderr: str = ""
    truncated: bool = False
    error_class: str = Field("", description="The Kubernetes port's error class, e.g. NotFound")
    error: str = ""
