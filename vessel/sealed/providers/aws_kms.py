"""The `aws-kms` provider: the master key encrypted by AWS KMS (Encrypt/Decrypt) under a
KMS key, with an encryption context binding it to one bucket's repository. Any server
speaking the KMS API works (`endpoint_url`).

Key files: `{"format": "vessel.key/1", "provider": "aws-kms", "key_arn", "context",
"data", "check"}`: `data` is the KMS ciphertext blob, `key_arn` the key that made it,
`context` the encryption context (also needed, and checked, to decrypt).

The key is described (DescribeKey) before each use: a file made by another key is then
refused without a Decrypt, and a disabled or deleted key is reported as such. The KMS
principal needs kms:Encrypt, kms:Decrypt and kms:DescribeKey on the key.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

from vessel.sealed.errors import KeyServiceUnreachable, KeyUnavailable, WrongPassword
from vessel.sealed.keys import (
    KEY_FORMAT,
    MasterKey,
    b64,
    master_from_payload,
    master_payload,
    of_provider,
    unb64,
    verify_check,
    with_check,
)

NAME = "aws-kms"
PURPOSE = "vessel.key/1 master key"
WRONG_KEY = {"InvalidCiphertextException", "IncorrectKeyException"}
"""Decrypt errors meaning: not this key, or not this encryption context (another bucket).
Every other error means the key cannot be used now (KeyUnavailable)."""


class KmsKey:
    def __init__(
        self,
        key_id: str,
        repository: str,
        *,
        region: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        """`repository` is what key files are bound to (`<bucket>/<prefix>`); `region`
        and `endpoint_url` default to boto3's own (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_KMS),
        as do the credentials (AWS_ACCESS_KEY_ID..., a profile, a web identity)."""
        if not key_id:
            raise ValueError("a KMS key id, ARN or alias is needed")
        self.key_id = key_id
        self.context = {"vessel:purpose": PURPOSE, "vessel:repository": repository}
        try:
            self._kms: Any = boto3.session.Session().client(
                "kms",
                region_name=region,
                endpoint_url=endpoint_url,
                config=Config(connect_timeout=5, read_timeout=15, retries={"mode": "standard"}),
            )
        except BotoCoreError as exc:  # no region, unusable endpoint
            raise KeyUnavailable(f"{self.describe()}: {exc}") from exc

    def __repr__(self) -> str:
        return f"KmsKey({self.key_id!r})"

    def describe(self) -> str:
        return f"KMS key {self.key_id}"

    def _call(self, operation: str, **params: Any) -> dict[str, Any]:
        try:
            answer: dict[str, Any] = getattr(self._kms, operation)(**params)
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", "error"))
            if code in WRONG_KEY:
                raise WrongPassword(
                    f"{self.describe()} does not open this key file ({code}: wrapped by "
                    "another key, or bound to another bucket or repository)"
                ) from None
            raise KeyUnavailable(
                f"{self.describe()}: {code}: {error.get('Message') or 'refused'}"
            ) from None
        except (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError) as exc:
            raise KeyServiceUnreachable(f"{self.describe()}: {exc}") from None
        except BotoCoreError as exc:  # no credentials, malformed answers
            raise KeyUnavailable(f"{self.describe()}: {exc}") from None
        return answer

    def _usable_arn(self) -> str:
        """The key's ARN, once KMS says it is enabled."""
        meta = self._call("describe_key", KeyId=self.key_id)["KeyMetadata"]
        state = str(meta.get("KeyState", "Enabled"))
        if state != "Enabled" or meta.get("Enabled") is False:
            when = meta.get("DeletionDate")
            until = f", deletion on {when:%Y-%m-%d}" if when is not None else ""
            raise KeyUnavailable(f"{self.describe()} ({meta['Arn']}) is {state}{until}")
        return str(meta["Arn"])

    def wrap(self, master: MasterKey) -> dict[str, object]:
        arn = self._usable_arn()
        answer = self._call(
            "encrypt", KeyId=arn, Plaintext=master_payload(master), EncryptionContext=self.context
        )
        return with_check(
            {
                "format": KEY_FORMAT,
                "provider": NAME,
                "key_arn": str(answer.get("KeyId") or arn),
                "context": self.context,
                "data": b64(answer["CiphertextBlob"]),
            }
        )

    def unwrap(self, document: dict[str, object]) -> MasterKey:
        of_provider(document, NAME)
        verify_check(document)
        blob = unb64(document, "data")
        arn = self._usable_arn()
        if document.get("key_arn") != arn:
            raise WrongPassword(
                f"{self.describe()} ({arn}) does not open this key file "
                f"(wrapped by {document.get('key_arn')})"
            )
        # The context is ours, not the file's: a key file copied from another bucket
        # names that bucket's context, and must not open here.
        answer = self._call(
            "decrypt", CiphertextBlob=blob, KeyId=arn, EncryptionContext=self.context
        )
        return master_from_payload(bytes(answer["Plaintext"]))
