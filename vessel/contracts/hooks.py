"""Execution hooks: commands protection runs in an app's containers around snapshots,
backups and restores, so an app can make its data consistent (flush and lock a database,
freeze a filesystem) before its volumes are captured and resume after.

Hooks are kept in KV `hooks` under `<app_id>.<hook_id>` (written by protection only).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from vessel.contracts.models import AppId, Identifier, K8sName, Payload

HookStage = Literal["pre-snapshot", "post-snapshot", "pre-backup", "post-backup", "post-restore"]
STAGES: tuple[HookStage, ...] = (
    "pre-snapshot",
    "post-snapshot",
    "pre-backup",
    "post-backup",
    "post-restore",
)


class ExecHook(Payload):
    """A command run in every container of the app whose name and image match the
    regular expressions (`re.search`: anchor with `^...$` for a whole-name match; a
    missing expression matches any). `command` runs as given (no shell unless it names
    one); `builtin: fsfreeze` freezes (pre-*) or thaws (post-*) every mount of the app's
    claims in the container."""

    id: Identifier
    app_id: AppId
    stage: HookStage
    container_name: str = Field("", max_length=256, description="Regex on container names")
    container_image: str = Field("", max_length=256, description="Regex on container images")
    command: list[str] = Field(
        default_factory=list, max_length=64, description="argv, e.g. [sh, -c, 'sync']"
    )
    builtin: Literal["fsfreeze"] | None = Field(
        None, description="A command Vessel writes for you instead of `command`"
    )
    timeout_seconds: int = Field(30, ge=1, le=3600)
    on_failure: Literal["fail", "continue"] = Field(
        "fail",
        description="fail: a failed or timed-out run fails the operation; continue: recorded",
    )

    @field_validator("container_name", "container_image")
    @classmethod
    def _regex(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from exc
        return value

    @field_validator("command")
    @classmethod
    def _argv(cls, value: list[str]) -> list[str]:
        if value and not value[0]:
            raise ValueError("the program (first element) must not be empty")
        if any(len(arg) > 4096 for arg in value):
            raise ValueError("an argument is longer than 4096 characters")
        return value

    @model_validator(mode="after")
    def _one_action(self) -> ExecHook:
        if not self.container_name and not self.container_image:
            raise ValueError("set container_name or container_image (or both)")
        if bool(self.command) == (self.builtin is not None):
            raise ValueError("set exactly one of command (non-empty) and builtin")
        return self

    @property
    def key(self) -> str:
        return hook_key(self.app_id, self.id)


def hook_key(app_id: str, hook_id: str) -> str:
    """The KV `hooks` key of a hook: `<app_id>.<hook_id>`."""
    return f"{app_id}.{hook_id}"


class PutHook(Payload):
    """Create or replace an app's execution hook."""

    operation_id: Identifier
    hook: ExecHook
    requested_by: str = "anonymous"


class RemoveHook(Payload):
    """Remove an app's execution hook (nothing happens if it does not exist)."""

    operation_id: Identifier
    app_id: AppId
    hook_id: Identifier
    requested_by: str = "anonymous"


class HookFailed(Payload):
    """A hook run that failed (non-zero exit, could not start) or timed out."""

    app_id: AppId
    hook_id: Identifier
    stage: HookStage
    namespace: K8sName
    pod: K8sName
    container: str = Field(min_length=1)
    reason: Literal["exit", "timeout", "error"] = Field(
        description="exit: non-zero exit code; timeout: ran too long; error: could not run"
    )
    exit_code: int | None = Field(None, description="Set when reason is exit")
    stderr_tail: str = Field("", max_length=4096, description="The end of its stderr")
    message: str = ""
    on_failure: Literal["fail", "continue"] = "fail"
    operation_id: str = Field("", description="The operation the hook ran for, if known")
