"""The KMS-protocol server as tests use it: keys made, disabled and scheduled for deletion
through the same API an operator's tools use."""

from __future__ import annotations

from typing import Any

import boto3

from vessel.sealed.providers.aws_kms import KmsKey

REGION = "eu-west-1"
BOUND_TO = "tests-bucket/repository"


class Kms:
    def __init__(self, endpoint_url: str) -> None:
        self.endpoint_url = endpoint_url
        self.admin: Any = boto3.client("kms", region_name=REGION, endpoint_url=endpoint_url)

    def new_key(self) -> str:
        """A fresh symmetric key's id."""
        return str(self.admin.create_key(Description="vessel tests")["KeyMetadata"]["KeyId"])

    def provider(self, key_id: str, bound_to: str = BOUND_TO) -> KmsKey:
        return KmsKey(key_id, bound_to, region=REGION, endpoint_url=self.endpoint_url)

    def disable(self, key_id: str) -> None:
        self.admin.disable_key(KeyId=key_id)

    def schedule_deletion(self, key_id: str) -> None:
        self.admin.schedule_key_deletion(KeyId=key_id, PendingWindowInDays=7)
