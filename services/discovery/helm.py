"""Helm release records: `sh.helm.release.v1.<release>.v<N>` Secrets of type
`helm.sh/release.v1`.

The `release` data key holds base64 of gzipped JSON (the API adds its own base64 layer on
top). Only the release's identity, chart and status are kept: never its manifest or values,
which may hold secrets.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import re
import zlib
from typing import Any

from vessel.contracts.models import HelmRelease
from vessel.kube.objects import KubeObject

RELEASE_TYPE = "helm.sh/release.v1"
RELEASE_ANNOTATION = "meta.helm.sh/release-name"
RELEASE_NAMESPACE_ANNOTATION = "meta.helm.sh/release-namespace"
SUMMARY_KEY = "vesselHelm"
"""Where a slimmed release Secret keeps its decoded summary (see kinds.slim)."""
_NAME = re.compile(r"^sh\.helm\.release\.v1\.(?P<release>.+)\.v(?P<version>[0-9]+)$")
_MAX_RELEASE_BYTES = 64 << 20


class ReleaseError(ValueError):
    """A release record that cannot be decoded; the message names what was wrong."""


def is_release_secret(obj: KubeObject) -> bool:
    return obj.get("kind") == "Secret" and obj.get("type") == RELEASE_TYPE


def parse_name(name: str) -> tuple[str, int] | None:
    """(release, version) from a release Secret's name, or None if it is not one."""
    match = _NAME.match(name)
    return (match["release"], int(match["version"])) if match else None


def decode_payload(data: str) -> dict[str, Any]:
    """The release JSON from the Secret's `release` value as the API returns it."""
    raw = _b64(data, "the Secret's data")
    if not raw.startswith(b"\x1f\x8b"):
        raw = _b64(raw.decode("ascii", "replace"), "Helm's encoding")
    if raw.startswith(b"\x1f\x8b"):
        try:
            decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            raw = decompressor.decompress(raw, _MAX_RELEASE_BYTES)
        except (zlib.error, gzip.BadGzipFile) as exc:
            raise ReleaseError(f"release is not valid gzip: {exc}") from exc
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise ReleaseError(f"release is not JSON: {exc.__class__.__name__}") from exc
    if not isinstance(doc, dict):
        raise ReleaseError("release JSON is not an object")
    return doc


def _b64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ReleaseError(f"release is not valid base64 ({what})") from exc


def summarize(secret: KubeObject) -> HelmRelease:
    """The release a Secret records; status `unknown` when its data cannot be decoded."""
    meta = secret.get("metadata") or {}
    name = str(meta.get("name", ""))
    parsed = parse_name(name)
    labels = meta.get("labels") or {}
    release = labels.get("name") or (parsed[0] if parsed else name)
    revision = parsed[1] if parsed else _int(labels.get("version"))
    namespace = str(meta.get("namespace") or "default")
    data = (secret.get("data") or {}).get("release")
    if not isinstance(data, str):
        raise ReleaseError(f"Secret {namespace}/{name} has no `release` data")
    doc = decode_payload(data)
    chart = ((doc.get("chart") or {}).get("metadata")) or {}
    info = doc.get("info") or {}
    return HelmRelease(
        name=str(doc.get("name") or release),
        namespace=str(doc.get("namespace") or namespace),
        revision=_int(doc.get("version")) or revision,
        chart=str(chart.get("name") or ""),
        chart_version=str(chart.get("version") or ""),
        app_version=str(chart.get("appVersion") or ""),
        status=str(info.get("status") or labels.get("status") or "unknown"),
    )


def fallback(secret: KubeObject) -> HelmRelease:
    """What the Secret's name and labels tell when its data cannot be decoded."""
    meta = secret.get("metadata") or {}
    parsed = parse_name(str(meta.get("name", "")))
    labels = meta.get("labels") or {}
    return HelmRelease(
        name=labels.get("name") or (parsed[0] if parsed else str(meta.get("name"))),
        namespace=str(meta.get("namespace") or "default"),
        revision=parsed[1] if parsed else _int(labels.get("version")),
        status="unknown",
    )


def _int(value: Any) -> int:
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def latest_releases(secrets: list[KubeObject]) -> dict[str, HelmRelease]:
    """Release name -> its latest revision, from slimmed release Secrets of one namespace."""
    latest: dict[str, HelmRelease] = {}
    for secret in secrets:
        summary = secret.get(SUMMARY_KEY)
        if not isinstance(summary, HelmRelease):
            continue
        current = latest.get(summary.name)
        if current is None or summary.revision > current.revision:
            latest[summary.name] = summary
    return latest


def encode_release(doc: dict[str, Any]) -> str:
    """A release as Helm writes it into a Secret's `data.release` (for tests and the bench)."""
    inner = base64.b64encode(gzip.compress(json.dumps(doc).encode()))
    return base64.b64encode(inner).decode()
