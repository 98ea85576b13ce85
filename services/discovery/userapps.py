"""User-defined apps (like Trident Protect's Application): namespaces, each with an
optional label selector. Pure functions; the definitions themselves live in KV
(`state.DefinitionStore`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from services.discovery.app_record import Built, ClusterFacts, build_app, key_of
from vessel.contracts.commands import DefineApp
from vessel.contracts.models import NamespaceSelection, app_id
from vessel.kube.objects import KubeObject, labels_of, namespace_of
from vessel.kube.selectors import SelectorError, from_label_selector, matches


def default_include(definition: DefineApp) -> list[NamespaceSelection]:
    return definition.include or [NamespaceSelection(namespace=definition.namespace)]


def definition_id(d: DefineApp) -> str:
    return app_id(d.cluster, d.namespace, d.name)


def namespaces_of(d: DefineApp) -> set[str]:
    return {s.namespace for s in default_include(d)}


def _label_selector(selection: NamespaceSelection) -> dict[str, Any]:
    """The selection as a LabelSelector. A DefineApp's expressions are not checked against
    their operator, so as ever: Exists and DoesNotExist ignore values, and a NotIn without
    values excludes nothing (an In without values is refused: it selects nothing)."""
    expressions = [
        {
            "key": r.key,
            "operator": r.operator,
            "values": [] if r.operator in ("Exists", "DoesNotExist") else r.values,
        }
        for r in selection.match_expressions
        if r.values or r.operator != "NotIn"
    ]
    return {"matchLabels": selection.match_labels, "matchExpressions": expressions}


def selection_matches(selection: NamespaceSelection, obj: KubeObject) -> bool:
    """`obj` is in the namespace and carries the selection's labels (all of them)."""
    if namespace_of(obj) != selection.namespace:
        return False
    try:
        requirements = from_label_selector(_label_selector(selection))
    except SelectorError:
        return False
    return matches(requirements, labels_of(obj))


def user_app(
    facts: ClusterFacts, definition: DefineApp, objects_in: Callable[[str], Iterable[KubeObject]]
) -> tuple[Built, set[tuple[str, str, str]]]:
    """A user-defined app and the (namespace, kind, name) of every object it selects."""
    include = default_include(definition)
    members: dict[tuple[str, str, str], KubeObject] = {}
    for selection in include:
        for obj in objects_in(selection.namespace):
            if selection_matches(selection, obj):
                members[(selection.namespace, *key_of(obj))] = obj
    namespaces = sorted({s.namespace for s in include})
    home = next((s for s in include if s.namespace == definition.namespace), None)
    built = build_app(
        facts,
        definition.namespace,
        definition.name,
        "user",
        list(members.values()),
        selector=dict(home.match_labels) if home is not None else {},
        namespaces=namespaces,
    )
    return built, set(members)
