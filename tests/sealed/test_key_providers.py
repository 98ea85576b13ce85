"""The `KeyProvider` contract (vessel/sealed/keys.py), held for every provider: password,
kubernetes-secret, and aws-kms against a real KMS-protocol server."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from tests.sealed.kmskit import Kms
from vessel.sealed.errors import CorruptObject, UnknownFormat, WrongPassword
from vessel.sealed.keys import KeyProvider, MasterKey
from vessel.sealed.providers.kubernetes_secret import SecretKey, new_secret_value
from vessel.sealed.providers.password import PasswordKey

KINDS = ["password", "kubernetes-secret", "aws-kms"]


@dataclass
class Kit:
    kind: str
    provider: KeyProvider
    other: KeyProvider
    """The same kind of provider with another key."""
    secrets: list[str]
    """The provider's own key material as configured (never in a key file)."""


def make_kit(kind: str, request: pytest.FixtureRequest) -> Kit:
    if kind == "password":
        return Kit(kind, PasswordKey("hunter2-but-longer"), PasswordKey("other"), ["hunter2"])
    if kind == "kubernetes-secret":
        value = new_secret_value()
        raw = base64.b64decode(value)
        return Kit(
            kind,
            SecretKey(value, "vessel", "bucket-key", "key"),
            SecretKey(new_secret_value(), "vessel", "bucket-key", "key"),
            [value, raw.hex(), raw.decode("latin-1")],
        )
    kms: Kms = request.getfixturevalue("kms")
    return Kit(kind, kms.provider(kms.new_key()), kms.provider(kms.new_key()), [])


@pytest.fixture(params=KINDS)
def kit(request: pytest.FixtureRequest) -> Kit:
    return make_kit(request.param, request)


def text(document: dict[str, object]) -> str:
    """The key file as stored."""
    return json.dumps(document)


def test_round_trip(kit: Kit) -> None:
    master = MasterKey.generate()
    stored = json.loads(text(kit.provider.wrap(master)))
    assert stored["format"] == "vessel.key/1" and stored["provider"] == kit.kind
    assert kit.provider.unwrap(stored) == master


def test_two_wraps_differ_and_both_open(kit: Kit) -> None:
    master = MasterKey.generate()
    first, second = kit.provider.wrap(master), kit.provider.wrap(master)
    assert text(first) != text(second)
    assert kit.provider.unwrap(first) == kit.provider.unwrap(second) == master
    assert kit.provider.unwrap(first) == master  # unwrapping changes nothing


def test_another_key_of_the_same_kind_is_a_wrong_password(kit: Kit) -> None:
    document = kit.provider.wrap(MasterKey.generate())
    with pytest.raises(WrongPassword):
        kit.other.unwrap(document)


def test_another_providers_document_is_an_unknown_format(
    kit: Kit, request: pytest.FixtureRequest
) -> None:
    foreign = [kind for kind in KINDS if kind != kit.kind]
    assert foreign
    for kind in foreign:
        document = make_kit(kind, request).provider.wrap(MasterKey.generate())
        with pytest.raises(UnknownFormat):
            kit.provider.unwrap(document)


def _flip_data(document: dict[str, object]) -> dict[str, object]:
    raw = bytearray(base64.b64decode(str(document["data"])))
    raw[len(raw) // 2] ^= 0x01
    return {**document, "data": base64.b64encode(bytes(raw)).decode()}


DAMAGES: dict[str, Callable[[dict[str, object]], dict[str, object]]] = {
    "a flipped bit in the sealed key": _flip_data,
    "the sealed key truncated": lambda d: {**d, "data": str(d["data"])[:-8]},
    "the sealed key not base64": lambda d: {**d, "data": "not base64!"},
    "the sealed key missing": lambda d: {k: v for k, v in d.items() if k != "data"},
    "the checksum missing": lambda d: {k: v for k, v in d.items() if k != "check"},
    "a field added": lambda d: {**d, "note": "edited"},
}


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_a_damaged_document_is_corrupt(kit: Kit, damage: str) -> None:
    document = kit.provider.wrap(MasterKey.generate())
    with pytest.raises(CorruptObject):
        kit.provider.unwrap(DAMAGES[damage](document))


def test_no_key_material_in_plaintext(kit: Kit) -> None:
    master = MasterKey.generate()
    stored = text(kit.provider.wrap(master))
    for material in (master.encryption, master.chunk_id):
        for shown in (
            material.hex(),
            base64.b64encode(material).decode(),
            base64.urlsafe_b64encode(material).decode(),
            material.decode("latin-1"),
        ):
            assert shown not in stored
    for secret in kit.secrets:
        assert secret not in stored
    assert "hidden" in repr(master) and all(s not in repr(kit.provider) for s in kit.secrets)
