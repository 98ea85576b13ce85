"""Key providers named on the `vessel-repo` command line (`--key`, `rotate-key --to`).

- `password`: the password in VESSEL_REPOSITORY_PASSWORD (`--to`: in
  VESSEL_NEW_REPOSITORY_PASSWORD);
- `aws-kms:KEY` (a key id, ARN or alias): AWS KMS, with region, endpoint and credentials
  from the standard AWS environment (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_KMS,
  AWS_ACCESS_KEY_ID...); key files bound to `<bucket>/<prefix>` unless VESSEL_KMS_BOUND_TO
  says otherwise;
- `kubernetes-secret:NAMESPACE/NAME/KEY`: the base64 key that Secret key holds, given in
  VESSEL_SECRET_KEY (`--to`: VESSEL_NEW_SECRET_KEY), e.g. from
  `kubectl get secret -n NAMESPACE NAME -o jsonpath='{.data.KEY}' | base64 -d`.
"""

from __future__ import annotations

import os

from vessel.config import KmsKeyConfig
from vessel.objectstore.base import ObjectStore
from vessel.sealed.keys import KeyProvider
from vessel.sealed.providers.factory import kms_key
from vessel.sealed.providers.kubernetes_secret import SecretKey
from vessel.sealed.providers.password import PasswordKey

ENV = {
    "password": ("VESSEL_REPOSITORY_PASSWORD", "VESSEL_NEW_REPOSITORY_PASSWORD"),
    "kubernetes-secret": ("VESSEL_SECRET_KEY", "VESSEL_NEW_SECRET_KEY"),
}


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"error: set {name}")
    return value


def key_provider(spec: str, store: ObjectStore, prefix: str, *, new: bool = False) -> KeyProvider:
    """The provider `spec` names, for the repository `prefix` in `store`; `new`: the
    target of a rotation, whose secrets come from the VESSEL_NEW_* variables."""
    kind, _, arg = spec.partition(":")
    if kind == "password" and not arg:
        return PasswordKey(_env(ENV[kind][new]))
    if kind == "aws-kms" and arg:
        config = KmsKeyConfig(
            provider="aws-kms", key_id=arg, bound_to=os.environ.get("VESSEL_KMS_BOUND_TO")
        )
        return kms_key(config, store.bucket, prefix.strip("/"))
    if kind == "kubernetes-secret" and arg.count("/") == 2 and all(arg.split("/")):
        namespace, name, key = arg.split("/")
        return SecretKey(_env(ENV[kind][new]), namespace, name, key)
    raise SystemExit(
        f"error: {spec!r} is not password, aws-kms:KEY or kubernetes-secret:NAMESPACE/NAME/KEY"
    )
