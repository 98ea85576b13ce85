"""The `kubernetes-secret` provider: the master key wrapped with AES-256-GCM directly
under a random 32-byte key kept (base64) in a key of a Kubernetes Secret.

Key files: `{"format": "vessel.key/1", "provider": "kubernetes-secret", "secret":
{"namespace", "name", "key"}, "nonce", "data", "check"}`. The Secret is named so an
operator knows which one opens the bucket; the key itself is never in the file. No KDF:
the key is random, so there is nothing to slow a guesser down for.
"""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vessel.sealed.errors import CorruptObject, KeyUnavailable, WrongPassword
from vessel.sealed.keys import (
    KEY_FORMAT,
    NONCE,
    MasterKey,
    b64,
    master_from_payload,
    master_payload,
    of_provider,
    unb64,
    verify_check,
    with_check,
)

NAME = "kubernetes-secret"
ASSOCIATED = b"vessel.key/1 kubernetes-secret"


def new_secret_value() -> str:
    """A fresh key as the Secret holds it (what `head -c 32 /dev/urandom | base64` gives)."""
    return b64(os.urandom(32))


class SecretKey:
    """The key read from Secret `namespace/name`, key `key`; reading the Secret is the
    caller's (vessel/sealed/providers/factory.py), so this stays synchronous and pure."""

    def __init__(self, value: str, namespace: str, name: str, key: str) -> None:
        self.namespace, self.name, self.key = namespace, name, key
        try:
            material = base64.b64decode(value.strip(), validate=True)
        except (binascii.Error, ValueError):
            material = b""
        if len(material) != 32:
            raise KeyUnavailable(f"{self.describe()} does not hold a base64-encoded 32-byte key")
        self._aead = AESGCM(material)

    def __repr__(self) -> str:
        return f"SecretKey({self.namespace}/{self.name}[{self.key}], <hidden>)"

    def describe(self) -> str:
        return f"Secret {self.namespace}/{self.name} key {self.key!r}"

    def wrap(self, master: MasterKey) -> dict[str, object]:
        nonce = os.urandom(NONCE)
        return with_check(
            {
                "format": KEY_FORMAT,
                "provider": NAME,
                "secret": {"namespace": self.namespace, "name": self.name, "key": self.key},
                "nonce": b64(nonce),
                "data": b64(self._aead.encrypt(nonce, master_payload(master), ASSOCIATED)),
            }
        )

    def unwrap(self, document: dict[str, object]) -> MasterKey:
        of_provider(document, NAME)
        verify_check(document)
        nonce, data = unb64(document, "nonce"), unb64(document, "data")
        if len(nonce) != NONCE:
            raise CorruptObject(f"key: nonce of {len(nonce)} bytes")
        try:
            payload = self._aead.decrypt(nonce, data, ASSOCIATED)
        except InvalidTag:
            # The Secret named in the file is not trusted (the bucket is not), but it
            # tells the operator where the key that opens it was kept.
            named = document.get("secret")
            where = (
                f"{named.get('namespace')}/{named.get('name')} key {named.get('key')!r}"
                if isinstance(named, dict)
                else "an unnamed Secret"
            )
            raise WrongPassword(
                f"{self.describe()} does not open this key file (wrapped by {where})"
            ) from None
        return master_from_payload(payload)
