"""User-defined apps (like Trident Protect's Application): namespaces, each with an
optional label selector. Pure functions; the definitions themselves live in KV."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from services.discovery.kinds import Obj
from services.discovery.records import Built, Context, build_app, key_of
from services.discovery.selectors import selection_matches
from vessel.contracts.commands import DefineApp
from vessel.contracts.models import NamespaceSelection, app_id


def default_include(definition: DefineApp) -> list[NamespaceSelection]:
    return definition.include or [NamespaceSelection(namespace=definition.namespace)]


def definition_id(d: DefineApp) -> str:
    return app_id(d.cluster, d.namespace, d.name)


def namespaces_of(d: DefineApp) -> set[str]:
    return {s.namespace for s in default_include(d)}


def user_app(
    ctx: Context, definition: DefineApp, objects_in: Callable[[str], Iterable[Obj]]
) -> tuple[Built, set[tuple[str, str, str]]]:
    """A user-defined app and the (namespace, kind, name) of every object it selects."""
    include = default_include(definition)
    members: dict[tuple[str, str, str], Obj] = {}
    for selection in include:
        for obj in objects_in(selection.namespace):
            if selection_matches(selection, obj):
                members[(selection.namespace, *key_of(obj))] = obj
    namespaces = sorted({s.namespace for s in include})
    home = next((s for s in include if s.namespace == definition.namespace), None)
    built = build_app(
        ctx,
        definition.namespace,
        definition.name,
        "user",
        list(members.values()),
        selector=dict(home.match_labels) if home is not None else {},
        namespaces=namespaces,
    )
    return built, set(members)
