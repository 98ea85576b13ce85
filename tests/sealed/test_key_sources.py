"""Each provider's own edges: the password format of existing repositories, the Secret
holding a usable key, a KMS key disabled, scheduled for deletion or out of reach, key
files bound to their bucket, and the errors each gives when opening a key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.sealed.kmskit import REGION, Kms
from vessel.objectstore.local import LocalStore
from vessel.sealed.errors import CorruptObject, KeyServiceUnreachable, KeyUnavailable, WrongPassword
from vessel.sealed.keys import MasterKey, open_master_key, write_key_file
from vessel.sealed.providers.aws_kms import KmsKey
from vessel.sealed.providers.kubernetes_secret import SecretKey, new_secret_value
from vessel.sealed.providers.password import PasswordKey
from vessel_dev.rig.processes import free_port

LEGACY = {
    "format": "vessel.key/1",
    "kdf": "scrypt",
    "n": 32768,
    "r": 8,
    "p": 1,
    "salt": "WQbLr3zF6H3+ir16xvhDLA==",
    "nonce": "Yhd3y6jq5coTo7PQ",
    "data": "r0epxffHoeugoQnNqYaUzMM28qWXClvKsV3ApxXyez46QIYwrpS04C/Erj0LLTt2WYzhUffnWaDPw6ZcE5Vk"
    "aQJtyzy9Y5hx3Y9tQeK6zrnW3TA8xImHSF+aeFTTwUFfy2tlkBgzCcapgqiu/4IO2+Zu387+JJ7WuPpK85wtaqB0"
    "d+RaTjQcFIyv",
}
"""A key file as Vessel wrote it before key providers had names (password
"legacy password", master key bytes 0..31 and 32..63)."""


def test_a_key_file_from_before_providers_still_opens() -> None:
    master = PasswordKey("legacy password").unwrap(dict(LEGACY))
    assert master == MasterKey(bytes(range(32)), bytes(range(32, 64)))
    with pytest.raises(WrongPassword):
        PasswordKey("another password").unwrap(dict(LEGACY))


@pytest.mark.parametrize("n", [2**24, 1])
def test_scrypt_costs_from_the_bucket_are_bounded(n: int) -> None:
    with pytest.raises(CorruptObject):
        PasswordKey("legacy password").unwrap({**LEGACY, "n": n})


@pytest.mark.parametrize(
    "value", ["", "not base64!", new_secret_value()[:20]], ids=["empty", "not-base64", "short"]
)
def test_a_secret_without_a_32_byte_key_is_unavailable_naming_it(value: str) -> None:
    with pytest.raises(KeyUnavailable, match="Secret vessel/bucket-key key 'k'") as caught:
        SecretKey(value, "vessel", "bucket-key", "k")
    assert value not in str(caught.value) or not value


def test_a_secret_key_file_names_the_secret_that_opens_it() -> None:
    document = SecretKey(new_secret_value(), "vessel", "old-key", "k").wrap(MasterKey.generate())
    assert document["secret"] == {"namespace": "vessel", "name": "old-key", "key": "k"}
    with pytest.raises(WrongPassword, match="wrapped by vessel/old-key key 'k'"):
        SecretKey(new_secret_value(), "vessel", "new-key", "k").unwrap(document)


def test_a_kms_key_file_opens_only_for_its_bucket(kms: Kms) -> None:
    key = kms.new_key()
    document = kms.provider(key, "bucket-a/repository").wrap(MasterKey.generate())
    assert document["context"] == {
        "vessel:purpose": "vessel.key/1 master key",
        "vessel:repository": "bucket-a/repository",
    }
    with pytest.raises(WrongPassword, match="bound to another bucket"):
        kms.provider(key, "bucket-b/repository").unwrap(document)


def test_a_kms_alias_opens_what_its_key_wrapped(kms: Kms) -> None:
    key = kms.new_key()
    kms.admin.create_alias(AliasName=f"alias/vessel-{key[:8]}", TargetKeyId=key)
    master = MasterKey.generate()
    document = kms.provider(key).wrap(master)
    assert kms.provider(f"alias/vessel-{key[:8]}").unwrap(document) == master


@pytest.mark.parametrize("revoke", ["disable", "schedule_deletion"])
def test_a_revoked_kms_key_is_unavailable_naming_it(kms: Kms, revoke: str) -> None:
    key = kms.new_key()
    provider = kms.provider(key)
    document = provider.wrap(MasterKey.generate())
    getattr(kms, revoke)(key)
    state = "Disabled" if revoke == "disable" else "PendingDeletion"
    with pytest.raises(KeyUnavailable, match=f"KMS key {key} .*is {state}"):
        provider.unwrap(document)
    with pytest.raises(KeyUnavailable, match=key):
        provider.wrap(MasterKey.generate())


def test_an_unknown_kms_key_is_unavailable(kms: Kms) -> None:
    document = kms.provider(kms.new_key()).wrap(MasterKey.generate())
    with pytest.raises(KeyUnavailable, match="KMS key alias/nothing-here: NotFoundException"):
        kms.provider("alias/nothing-here").unwrap(document)


def test_an_unreachable_kms_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "y")
    nobody = f"http://127.0.0.1:{free_port()}"
    provider = KmsKey("some-key", "b/r", region=REGION, endpoint_url=nobody)
    with pytest.raises(KeyServiceUnreachable, match="KMS key some-key: Could not connect"):
        provider.wrap(MasterKey.generate())


def test_a_kms_without_a_region_is_unavailable(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    with pytest.raises(KeyUnavailable, match="KMS key k1: You must specify a region"):
        KmsKey("k1", "b/r")


def test_opening_a_bucket_stops_at_an_unavailable_key(kms: Kms, tmp_path: Path) -> None:
    """Other key files are not tried once the key source refuses: none would open, and
    the refusal, naming the key, is the error worth reporting."""
    store = LocalStore(tmp_path / "bucket")
    store.ensure_bucket()
    key = kms.new_key()
    master = MasterKey.generate()
    write_key_file(store, "repository", PasswordKey("pw"), master)
    write_key_file(store, "repository", kms.provider(key), master)
    assert open_master_key(store, "repository", kms.provider(key)) == master
    kms.disable(key)
    with pytest.raises(KeyUnavailable, match=key):
        open_master_key(store, "repository", kms.provider(key))
    assert open_master_key(store, "repository", PasswordKey("pw")) == master


def test_no_key_file_opens_names_the_provider_and_the_unreadable_ones(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "bucket")
    store.ensure_bucket()
    write_key_file(store, "r", PasswordKey("pw"), MasterKey.generate())
    store.put_bytes("r/keys/junk", b"not json")
    damaged = json.dumps({**PasswordKey("pw").wrap(MasterKey.generate()), "n": 7}).encode()
    store.put_bytes("r/keys/damaged", damaged)
    secret = SecretKey(new_secret_value(), "ns", "s", "k")
    with pytest.raises(WrongPassword) as caught:
        open_master_key(store, "r", secret)
    message = str(caught.value)
    assert "with Secret ns/s key 'k'" in message
    assert "r/keys/junk" in message and "r/keys/damaged" in message
