"""The state catalogue names every bucket once, its models resolve, and services spell no
bucket name or backup-bucket key of their own."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest
from pydantic import BaseModel

from vessel.contracts import state

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("provisioner", "discovery", "protection", "mover", "gateway")


def test_bucket_names_are_unique_and_owned_by_services() -> None:
    names = [b.name for b in state.KV_BUCKETS]
    assert len(names) == len(set(names))
    for bucket in state.KV_BUCKETS:
        owners = {o.split(" ")[0].strip(",") for o in bucket.owner.split(", ")}
        assert owners <= set(SERVICES), bucket
        assert set(bucket.readers) <= set(SERVICES), bucket


@pytest.mark.parametrize("bucket", state.KV_BUCKETS, ids=lambda b: b.name)
def test_every_record_model_resolves(bucket: state.KvBucket) -> None:
    if bucket.record.startswith(state.TEXT):
        return
    module, _, name = bucket.record.partition(":")
    model = getattr(importlib.import_module(module), name)
    assert isinstance(model, type) and issubclass(model, BaseModel), bucket.record


def test_backup_keys_round_trip() -> None:
    listing = state.backup_key("bk-1", state.BACKUP_LISTING)
    assert listing == "backups/bk-1/backup.json"
    assert state.listed_backup_id(listing) == "bk-1"
    for other in (
        state.backup_key("bk-1", state.RESOURCES),
        "backups//backup.json",
        "backups/bk-1/sub/backup.json",
        state.snapshot_resources_key("bk-1"),
    ):
        assert state.listed_backup_id(other) is None


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def _spelt_by_hand(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "kv" and node.args and isinstance(node.args[0], ast.Constant):
                found.append(f"{path}:{node.lineno}: kv({node.args[0].value!r})")
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.JoinedStr) and node.values:
            first = node.values[0]
            text = first.value if isinstance(first, ast.Constant) else None
        if isinstance(text, str) and text.startswith(("backups/", "catalog/")):
            found.append(f"{path}:{node.lineno}: {text!r}")
    return found


def test_services_use_only_the_catalogue() -> None:
    """KV buckets are opened by catalogue name and backup-bucket keys come from it (the
    mover's repository has a layout of its own and is not a backup-bucket document)."""
    files = [
        p
        for service in SERVICES
        for p in sorted((ROOT / "services" / service).rglob("*.py"))
        if "repo" not in p.relative_to(ROOT / "services" / service).parts
    ]
    found = [line for p in files for line in _spelt_by_hand(p)]
    assert found == []
