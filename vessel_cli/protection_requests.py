"""The requests behind `vessel restore` and `vessel schedule create`, built from flags:
mappings, resource filters, transforms, confirmation, frequencies and retention."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from vessel.api.v1 import protection_pb2 as ppb
from vessel.api.v1 import vessel_pb2 as pb
from vessel_cli.options import WEEKDAYS


def pairs(values: list[str], flag: str) -> dict[str, str]:
    """`SOURCE:TARGET` flags as a mapping."""
    mapping = {}
    for pair in values:
        source, sep, target = pair.partition(":")
        if not sep or not source or not target:
            raise SystemExit(f"error: {flag} {pair!r} is not SOURCE:TARGET")
        mapping[source] = target
    return mapping


def parse_filter(text: str) -> pb.ResourceFilter:
    """`kind=ConfigMap,name=foo,namespace=shop,label.tier=web` (repeat a key for several)."""
    found = pb.ResourceFilter()
    for term in text.split(","):
        key, sep, value = term.partition("=")
        key = key.strip()
        if not sep or not value:
            raise SystemExit(f"error: filter term {term!r} is not KEY=VALUE")
        if key == "kind":
            found.kinds.append(value)
        elif key == "name":
            found.names.append(value)
        elif key == "namespace":
            found.namespaces.append(value)
        elif key.startswith("label.") and len(key) > len("label."):
            found.labels[key.removeprefix("label.")] = value
        else:
            raise SystemExit(
                f"error: filter key {key!r} is not kind, name, namespace or label.<key>"
            )
    return found


def _confirmed(a: argparse.Namespace) -> bool:
    if not a.in_place or a.yes:
        return bool(a.yes)
    if not sys.stdin.isatty():
        raise SystemExit("error: --in-place replaces the app where it runs: add --yes")
    answer = input(f"Restore {a.backup} in place, replacing the app where it runs? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise SystemExit("aborted")
    return True


def _transforms(path: str | None) -> str:
    if path is None:
        return ""
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise SystemExit(f"error: --transform {path}: {exc.strerror}") from None


def restore_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The request fields `restore_flags` set: mappings, filters, transforms, existing."""
    return {
        "namespace_mapping": pairs(a.namespace_map, "--namespace-map"),
        "storage_class_mapping": pairs(a.sc_map, "--sc-map"),
        "include": [parse_filter(f) for f in a.include],
        "exclude": [parse_filter(f) for f in a.exclude],
        "transforms_json": _transforms(a.transform),
        "existing": a.existing,
    }


def backup_id(words: list[str]) -> str:
    """`vessel restore BACKUP`, or `vessel restore create BACKUP` as earlier versions had it."""
    if len(words) == 2 and words[0] == "create":
        return words[1]
    if len(words) == 1:
        return words[0]
    raise SystemExit(f"error: restore one backup, not {' '.join(words)!r}")


def restore_request(a: argparse.Namespace) -> pb.CreateRestoreRequest:
    backup = a.backup = backup_id(a.backup)
    return pb.CreateRestoreRequest(
        backup_id=backup,
        bucket=a.bucket,
        target_cluster=a.to_cluster,
        **restore_fields(a),
        in_place=a.in_place,
        confirm=_confirmed(a),
        trust_unsealed=a.trust_unsealed,
        keep_on_failure=not a.cleanup_on_failure,
        request_id=a.request_id,
    )


def _day(frequency: str, text: str) -> dict[str, int]:
    if not text:
        return {}
    if frequency == "weekly":
        name = text.strip().lower()[:3]
        day = WEEKDAYS.index(name) if name in WEEKDAYS else int(text) if text.isdigit() else -1
        return {"day_of_week": day}
    if frequency == "monthly" and text.isdigit():
        return {"day_of_month": int(text)}
    raise SystemExit(f"error: --day {text!r} is for --weekly (sun..sat) or --monthly (1..28)")


def schedule_message(a: argparse.Namespace) -> ppb.Schedule:
    frequency = "cron" if a.cron else a.frequency or "daily"
    hour, minute = a.at if a.at else (0, 0)
    retention = ppb.Retention(
        hourly=getattr(a, "keep_hourly", 0),
        daily=getattr(a, "keep_daily", 0),
        weekly=getattr(a, "keep_weekly", 0),
        monthly=getattr(a, "keep_monthly", 0),
        yearly=getattr(a, "keep_yearly", 0),
        floor_verified=getattr(a, "floor_verified", 0),
    )
    if getattr(a, "floor", None) is not None:
        retention.floor = a.floor
    return ppb.Schedule(
        id=a.id,
        app_id=a.app,
        kind=a.kind,
        bucket=a.bucket,
        frequency=frequency,
        cron=a.cron or "",
        hour=hour,
        minute=minute,
        retention=retention,
        paused=a.paused,
        target_cluster=a.to_cluster,
        **_day(frequency, a.day),
    )
