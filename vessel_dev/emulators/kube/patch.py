"""The three patch formats the API server accepts for built-in kinds.

Strategic merge patch is approximated: it is a JSON merge patch (RFC 7386) except that
a list whose items are all objects with a ``name`` key is merged item-by-item by name
(the merge key of containers, volumes, env, ports-by-name and most named lists), and
the ``$patch: delete`` / ``$patch: replace`` and ``$deleteFromPrimitiveList/<key>``
directives are honoured. Lists whose real merge key is not ``name`` (e.g. conditions by
``type``) and primitive lists the real server unions (e.g. ``metadata.finalizers``) are
replaced wholesale, as a JSON merge patch would.
"""

from __future__ import annotations

import copy
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_PATCH)


class PatchError(ValueError):
    """The patch document is well-formed JSON but cannot be applied."""


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return _strip_directives(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field) or [] if v not in value]
        elif key.startswith("$"):
            continue  # $setElementOrder, $retainKeys: ordering hints only
        elif value is None:
            result.pop(key, None)
        elif isinstance(value, list) and _named_list(value):
            result[key] = _merge_named_list(result.get(key), value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _named_list(items: list[Any]) -> bool:
    return bool(items) and all(isinstance(i, dict) and "name" in i for i in items)


def _merge_named_list(original: Any, patch: list[Any]) -> list[Any]:
    if not isinstance(original, list) or not all(isinstance(i, dict) for i in original):
        return [_strip_directives(i) for i in patch if i.get("$patch") != "delete"]
    merged = list(original)
    for item in patch:
        index = next((n for n, o in enumerate(merged) if o.get("name") == item["name"]), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del merged[index]
        elif index is None:
            merged.append(_strip_directives(item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def json_patch(document: Any, operations: Any) -> Any:
    """Apply an RFC 6902 patch to a copy of ``document``; raises PatchError on failure."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    result = copy.deepcopy(document)
    for operation in operations:
        if not isinstance(operation, dict) or "path" not in operation:
            raise PatchError(f"malformed JSON patch operation: {operation!r}")
        result = _apply_operation(result, operation)
    return result


def _apply_operation(doc: Any, op: dict[str, Any]) -> Any:
    name, path = op.get("op"), _pointer(op["path"])
    if name in ("add", "replace", "test") and "value" not in op:
        raise PatchError(f"{name} operation at {op['path']!r} needs a value")
    if name == "add":
        return _add(doc, path, copy.deepcopy(op["value"]))
    if name == "remove":
        return _remove(doc, path)[0]
    if name == "replace":
        _resolve(doc, path)
        return _add(_remove(doc, path)[0], path, copy.deepcopy(op["value"]))
    if name in ("move", "copy"):
        source = _pointer(_require(op, "from"))
        value = copy.deepcopy(_resolve(doc, source))
        if name == "move":
            doc = _remove(doc, source)[0]
        return _add(doc, path, value)
    if name == "test":
        if _resolve(doc, path) != op["value"]:
            raise PatchError(f"test failed at {op['path']!r}")
        return doc
    raise PatchError(f"unknown JSON patch operation {name!r}")


def _require(op: dict[str, Any], key: str) -> str:
    value = op.get(key)
    if not isinstance(value, str):
        raise PatchError(f"{op.get('op')} operation needs {key!r}")
    return value


def _pointer(text: str) -> list[str]:
    if text == "":
        return []
    if not text.startswith("/"):
        raise PatchError(f"JSON pointer must start with '/': {text!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in text[1:].split("/")]


def _index(container: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _resolve(doc: Any, path: list[str]) -> Any:
    for token in path:
        if isinstance(doc, dict):
            if token not in doc:
                raise PatchError(f"path member {token!r} does not exist")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token, allow_end=False)]
        else:
            raise PatchError(f"cannot descend into a scalar at {token!r}")
    return doc


def _add(doc: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _resolve(doc, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, token, allow_end=True), value)
    else:
        raise PatchError(f"cannot add to a scalar at {token!r}")
    return doc


def _remove(doc: Any, path: list[str]) -> tuple[Any, Any]:
    if not path:
        raise PatchError("cannot remove the whole document")
    parent = _resolve(doc, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        if token not in parent:
            raise PatchError(f"path member {token!r} does not exist")
        return doc, parent.pop(token)
    if isinstance(parent, list):
        return doc, parent.pop(_index(parent, token, allow_end=False))
    raise PatchError(f"cannot remove from a scalar at {token!r}")


def apply_patch(content_type: str, document: Any, patch: Any) -> Any:
    """Dispatch on the media type; callers reject unknown types with 415 beforehand."""
    if content_type == JSON_PATCH:
        return json_patch(document, patch)
    if not isinstance(patch, dict):
        raise PatchError("a merge patch must be a JSON object")
    if content_type == STRATEGIC_PATCH:
        return strategic_merge_patch(document, patch)
    return merge_patch(document, patch)
