"""Flags and values shared by many verbs, with nothing heavier than argparse to import: the
parser is built on every call, so what it needs must cost nothing.

The global flags (output format, endpoint, token, TLS files) are accepted before the
resource and again after the verb, like kubectl: `vessel -o yaml app get X` and
`vessel app get X -o yaml` mean the same, and a flag after the verb wins over one before.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

OUTPUTS = ("table", "json", "yaml")
DEFAULT_ENDPOINT = "127.0.0.1:50051"
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
AT = re.compile(r"^(?:(\d{1,2}))?:(\d{2})$")
UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400, "y": 365 * 86400}
TTL = re.compile(r"^(\d+)([smhdwy]?)$")
ROLES = ("viewer", "member", "owner", "admin")
Parsers = Any
"""The `add_subparsers` object of a parser."""
HOOK_STAGES = ("pre-snapshot", "post-snapshot", "pre-backup", "post-backup", "post-restore")
"""`vessel.contracts.hooks.STAGES`, repeated so that parsing does not load pydantic (a test
keeps the two equal)."""


def add_global_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    """The global flags. The top-level parser holds their real defaults (`defaults`); a
    verb's copy has none (SUPPRESS), so it sets a value only when the flag follows the verb
    and then overrides the one given before. A flag the verb defines itself keeps the verb's
    meaning there (`bucket register --endpoint` is the bucket's S3 endpoint)."""

    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    taken = set(parser._option_string_actions)  # argparse has no public way to ask
    group = parser.add_argument_group("global flags (before the resource or after the verb)")

    def add(*flags: str, **kwargs: object) -> None:
        free = [f for f in flags if f not in taken]
        if len(free) == len(flags):
            group.add_argument(*flags, **kwargs)  # type: ignore[arg-type]

    add("-o", "--output", choices=OUTPUTS, default=default("table"), help="output format")
    # Connection flags default to None so that $VESSEL_* and the config file can fill them.
    add(
        "--endpoint",
        default=default(None),
        help=f"gateway host:port [$VESSEL_ENDPOINT] (default {DEFAULT_ENDPOINT})",
    )
    add("--token", default=default(None), help="bearer token [$VESSEL_TOKEN]")
    add(
        "--tls",
        action="store_const",
        const=True,
        default=default(None),
        help="use TLS with the system's CAs [$VESSEL_TLS=1]; implied by any --tls-* file",
    )
    add("--tls-ca", default=default(None), help="PEM CA bundle of the gateway [$VESSEL_TLS_CA]")
    add("--tls-cert", default=default(None), help="PEM client certificate [$VESSEL_TLS_CERT]")
    add("--tls-key", default=default(None), help="PEM key of --tls-cert [$VESSEL_TLS_KEY]")


def leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers that end a command line (`app list`, `restore`, ...)."""
    children = [
        child
        for action in parser._actions  # argparse has no public walk of its tree
        if isinstance(action, argparse._SubParsersAction)
        for child in dict.fromkeys(action.choices.values())
    ]
    if not children:
        return [parser]
    return [leaf for child in children for leaf in leaves(child)]


def spread_global_options(root: argparse.ArgumentParser) -> None:
    add_global_options(root, defaults=True)
    for leaf in leaves(root):
        add_global_options(leaf, defaults=False)


# ---- values ----


def parse_at(text: str) -> tuple[int, int]:
    """`02:30` -> (2, 30); `:15` (hourly) -> (0, 15)."""
    match = AT.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not HH:MM (or :MM for hourly)")
    return int(match[1] or 0), int(match[2])


def parse_ttl(text: str) -> int:
    """`30d`, `12h`, `90m`, `45s`, `2w`, `1y` or plain seconds; `0` or `never`: no expiry."""
    if text.strip().lower() == "never":
        return 0
    match = TTL.match(text.strip().lower())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration like 30d, 12h, 90m, 45s (or never)"
        )
    return int(match[1]) * UNITS[match[2] or "s"]


def restore_flags(p: argparse.ArgumentParser) -> None:
    """The flags of what a restore (or a clone or migration) restores, and how."""
    p.add_argument("--namespace-map", action="append", default=[], metavar="SOURCE:TARGET")
    p.add_argument(
        "--sc-map", action="append", default=[], metavar="SOURCE:TARGET", help="StorageClass map"
    )
    filters = "kind=K,name=N,namespace=NS,label.KEY=V (terms of one filter, all must match)"
    p.add_argument("--include", action="append", default=[], metavar="FILTER", help=filters)
    p.add_argument("--exclude", action="append", default=[], metavar="FILTER")
    transform = 'JSON array of {"match": FILTER, "patch": [RFC 6902 operations]}'
    p.add_argument("--transform", metavar="FILE.json", help=transform)
    p.add_argument(
        "--existing",
        choices=["skip", "update", "fail"],
        default="skip",
        help="objects already in the target (default skip)",
    )


def long_running(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--request-id", default="", help="idempotency key: a retry returns the same")
    p.add_argument("--wait", action="store_true", help=f"follow the {what} live until it ends")
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds to follow (--wait)")


def paged(p: argparse.ArgumentParser) -> None:
    p.add_argument("--page-size", type=int, default=0, help="one page of this many (max 1000)")
    p.add_argument("--page-token", default="", help="the page after this token")


def limited(p: argparse.ArgumentParser, *filters: str) -> None:
    for name in filters:
        p.add_argument(f"--{name}", default="", help=f"only this {name}")
    p.add_argument("--limit", type=int, default=0, help="at most this many (0: all)")


def verbs(resources: Parsers, name: str, help_text: str) -> Parsers:
    return resources.add_parser(name, help=help_text).add_subparsers(dest="verb", required=True)


def namespaced(text: str) -> tuple[str, str] | None:
    """`NAMESPACE/NAME` as (namespace, name); None when `text` is not that."""
    namespace, sep, name = text.partition("/")
    if not sep or not namespace or not name or "/" in name:
        return None
    return namespace, name
