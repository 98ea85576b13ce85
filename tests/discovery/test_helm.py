"""Helm release records: decoding, the latest revision per release, and what is kept."""

from __future__ import annotations

import base64
import gzip
import json

import pytest

from services.discovery import helm
from services.discovery.kinds import BY_KIND, slim
from tests.discovery import objects as o


def test_a_release_secret_is_decoded_to_name_chart_version_and_status() -> None:
    secret = o.helm_release("shop", "prod", 3, chart="storefront", chart_version="4.5.6")
    release = helm.summarize(secret)
    assert release.model_dump() == {
        "name": "shop",
        "namespace": "prod",
        "revision": 3,
        "chart": "storefront",
        "chart_version": "4.5.6",
        "app_version": "2.0",
        "status": "deployed",
    }


def test_a_single_base64_layer_and_plain_json_are_accepted_too() -> None:
    doc = {"name": "a", "version": 2, "info": {"status": "failed"}, "chart": {}}
    once = base64.b64encode(gzip.compress(json.dumps(doc).encode())).decode()
    assert helm.decode_payload(once)["info"] == {"status": "failed"}
    plain = base64.b64encode(base64.b64encode(json.dumps(doc).encode())).decode()
    assert helm.decode_payload(plain)["version"] == 2


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ("%%%", "release is not valid base64 (the Secret's data)"),
        (base64.b64encode(b"\x1f\x8bnot gzip").decode(), "release is not valid gzip"),
        (base64.b64encode(b"{nope").decode(), "release is not valid base64 (Helm's encoding)"),
        (
            base64.b64encode(base64.b64encode(b"[1, 2]")).decode(),
            "release JSON is not an object",
        ),
    ],
)
def test_undecodable_releases_say_what_is_wrong(data: str, error: str) -> None:
    secret = o.helm_release("shop", "prod", 1)
    secret["data"]["release"] = data
    with pytest.raises(helm.ReleaseError, match=error.replace("(", r"\(").replace(")", r"\)")):
        helm.summarize(secret)


def test_an_undecodable_release_keeps_its_name_and_revision_as_unknown() -> None:
    secret = o.helm_release("shop", "prod", 7)
    secret["data"]["release"] = "%%%"
    kept = slim(BY_KIND["Secret"], secret)
    summary = kept[helm.SUMMARY_KEY]
    assert (summary.name, summary.revision, summary.status) == ("shop", 7, "unknown")


def test_only_the_latest_revision_of_each_release_counts() -> None:
    secrets = [
        slim(BY_KIND["Secret"], o.helm_release("a", "ns", v, status=s))
        for v, s in [(1, "superseded"), (3, "deployed"), (2, "superseded")]
    ]
    secrets.append(slim(BY_KIND["Secret"], o.helm_release("b", "ns", 1, status="failed")))
    latest = helm.latest_releases(secrets)
    assert {k: (r.revision, r.status) for k, r in latest.items()} == {
        "a": (3, "deployed"),
        "b": (1, "failed"),
    }


def test_the_kept_copy_has_no_data_manifest_or_values() -> None:
    secret = o.helm_release("a", "ns", 1, values={"password": "hunter2"})
    kept = slim(BY_KIND["Secret"], secret)
    assert "data" not in kept
    text = json.dumps({k: v for k, v in kept.items() if k != helm.SUMMARY_KEY})
    text += kept[helm.SUMMARY_KEY].model_dump_json()
    assert "hunter2" not in text and "manifest" not in text and "aHVudGVyMg" not in text


@pytest.mark.parametrize(
    ("name", "parsed"),
    [
        ("sh.helm.release.v1.web.v12", ("web", 12)),
        ("sh.helm.release.v1.my.dotted.release.v3", ("my.dotted.release", 3)),
        ("sh.helm.release.v1.web", None),
        ("web-creds", None),
    ],
)
def test_release_secret_names(name: str, parsed: tuple[str, int] | None) -> None:
    assert helm.parse_name(name) == parsed
