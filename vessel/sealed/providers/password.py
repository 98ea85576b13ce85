"""The `password` provider: the master key wrapped under `scrypt(password, salt)`.

Key files: `{"format": "vessel.key/1", "provider": "password", "kdf": "scrypt", "n", "r",
"p", "salt", "nonce", "data", "check"}`. Files written before providers had names lack
`provider` and `check`; they open all the same, so existing repositories keep working.
"""

from __future__ import annotations

import hashlib
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from vessel.sealed.errors import CorruptObject, UnknownFormat, WrongPassword
from vessel.sealed.keys import (
    KEY_FORMAT,
    NONCE,
    MasterKey,
    b64,
    master_from_payload,
    master_payload,
    unb64,
    verify_check,
    with_check,
)

NAME = "password"
SCRYPT = {"n": 2**15, "r": 8, "p": 1}
ASSOCIATED = b"vessel-key"
MAX_COST = 2**20
"""Largest scrypt `n` a reader accepts: the parameters come from the bucket, and a forged
key file must not make a reader spend minutes or gigabytes on one attempt."""


class PasswordKey:
    def __init__(self, password: str) -> None:
        if not password:
            raise ValueError("the repository password must not be empty")
        self.password = password.encode()

    def __repr__(self) -> str:
        return "PasswordKey(<hidden>)"

    def describe(self) -> str:
        return "this password"

    def _kek(self, salt: bytes, n: int, r: int, p: int) -> AESGCM:
        derived = hashlib.scrypt(
            self.password, salt=salt, n=n, r=r, p=p, maxmem=128 << 20, dklen=32
        )
        return AESGCM(derived)

    def wrap(self, master: MasterKey) -> dict[str, object]:
        salt, nonce = os.urandom(16), os.urandom(NONCE)
        sealed = self._kek(salt, **SCRYPT).encrypt(nonce, master_payload(master), ASSOCIATED)
        return with_check(
            {
                "format": KEY_FORMAT,
                "provider": NAME,
                "kdf": "scrypt",
                **SCRYPT,
                "salt": b64(salt),
                "nonce": b64(nonce),
                "data": b64(sealed),
            }
        )

    def unwrap(self, document: dict[str, object]) -> MasterKey:
        if (
            document.get("format") != KEY_FORMAT
            or document.get("kdf") != "scrypt"
            or document.get("provider", NAME) != NAME
        ):
            raise UnknownFormat(
                f"key: not a password key file (format {document.get('format')!r}, "
                f"provider {document.get('provider', document.get('kdf'))!r})"
            )
        verify_check(document, required="provider" in document)
        try:
            params = {k: int(str(document[k])) for k in ("n", "r", "p")}
        except (KeyError, ValueError) as exc:
            raise CorruptObject(f"key: malformed scrypt parameters ({exc})") from exc
        if not 1 < params["n"] <= MAX_COST or params["r"] > 64 or params["p"] > 16:
            raise CorruptObject(f"key: scrypt parameters out of range {params}")
        salt, nonce, data = (unb64(document, k) for k in ("salt", "nonce", "data"))
        if len(nonce) != NONCE:
            raise CorruptObject(f"key: nonce of {len(nonce)} bytes")
        try:
            payload = self._kek(salt, **params).decrypt(nonce, data, ASSOCIATED)
        except InvalidTag:
            raise WrongPassword("wrong repository password") from None
        except ValueError as exc:  # parameters scrypt refuses (n not a power of 2...)
            raise CorruptObject(f"key: unusable scrypt parameters ({exc})") from exc
        return master_from_payload(payload)
