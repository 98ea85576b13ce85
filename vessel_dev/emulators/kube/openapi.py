"""``/openapi/v2``: the least of the OpenAPI document that ``kubectl apply`` needs.

kubectl validates manifests before applying them and refuses to go on when it cannot
download the schema. It first asks whether the server validates fields itself (the
``fieldValidation`` parameter of the kind's PATCH operation) and, since this server does
not, validates on its side against the document's definitions. The document therefore
lists one PATCH operation per kind, carrying ``x-kubernetes-group-version-kind`` and no
``fieldValidation`` parameter, and no definitions at all: client-side validation finds no
schema and passes, and ``apply`` computes its patches from kubectl's built-in types.

client-go asks for the gnostic protobuf encoding (``openapi_v2.Document``); it is
written here by hand for the handful of fields used. JSON is served on request.
"""

from __future__ import annotations

import json

from vessel.kube.objects import KubeObject
from vessel_dev.emulators.kube.kinds import KINDS, Kind, version_doc

# The Accept header names it with "@v1.0"; replies spell it with a dot, which Go can parse.
PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
_GVK = "x-kubernetes-group-version-kind"
# Field numbers of gnostic's OpenAPIv2.proto for the messages written below.
_DOC_SWAGGER, _DOC_INFO, _DOC_PATHS = 1, 2, 8
_INFO_TITLE, _INFO_VERSION = 1, 2
_PATHS_PATH, _NAMED_NAME, _NAMED_VALUE = 2, 1, 2
_PATH_ITEM_PATCH, _OPERATION_EXTENSION, _ANY_YAML = 8, 13, 2


def item_path(kind: Kind) -> str:
    root = f"/apis/{kind.group}/{kind.version}" if kind.group else f"/api/{kind.version}"
    scope = "/namespaces/{namespace}" if kind.namespaced else ""
    return f"{root}{scope}/{kind.plural}/{{name}}"


def _gvk(kind: Kind) -> KubeObject:
    return {"group": kind.group, "kind": kind.kind, "version": kind.version}


def document() -> KubeObject:
    """The JSON form of the document."""
    paths = {item_path(k): {"patch": {_GVK: _gvk(k), "responses": {}}} for k in KINDS}
    info = {"title": "Kubernetes", "version": version_doc()["gitVersion"]}
    return {"swagger": "2.0", "info": info, "paths": paths, "definitions": {}}


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        out.append(low | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    """A length-delimited field (strings and embedded messages alike)."""
    data = payload.encode() if isinstance(payload, str) else payload
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def protobuf() -> bytes:
    """The document as a serialized ``openapi.v2.Document``."""
    info = _field(_INFO_TITLE, "Kubernetes") + _field(_INFO_VERSION, version_doc()["gitVersion"])
    paths = b""
    for kind in KINDS:
        extension = _field(_NAMED_NAME, _GVK) + _field(
            _NAMED_VALUE, _field(_ANY_YAML, json.dumps(_gvk(kind)))
        )
        operation = _field(_OPERATION_EXTENSION, extension)
        item = _field(_PATH_ITEM_PATCH, operation)
        paths += _field(
            _PATHS_PATH, _field(_NAMED_NAME, item_path(kind)) + _field(_NAMED_VALUE, item)
        )
    return _field(_DOC_SWAGGER, "2.0") + _field(_DOC_INFO, info) + _field(_DOC_PATHS, paths)
