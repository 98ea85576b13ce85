"""`vessel`: drive Vessel through its gRPC API.

Endpoint, token and TLS files come from flags, else VESSEL_* environment variables, else
~/.config/vessel/config.yaml (see `vessel_cli.connection`). Global flags (-o, --endpoint,
--token, --tls*) go before the resource or after the verb.
"""

from __future__ import annotations

# Only argparse-level modules here: every call builds the parser, and a verb imports
# gRPC, the API stubs and what else it needs when it runs (see `command`).
import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any

from vessel_cli import completion, verbs_infra, verbs_protection
from vessel_cli.options import spread_global_options, verbs

Command = Callable[[Any, argparse.Namespace], list[Any]]
"""(channel, arguments) -> the messages to print."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vessel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    resources = parser.add_subparsers(dest="resource", required=True)

    app = verbs(resources, "app", "applications found by discovery")
    p = app.add_parser("list")
    p.add_argument("--cluster", default="")
    p.add_argument("--namespace", default="")
    p.set_defaults(run="vessel_cli.apps:app_list")
    p = app.add_parser("get")
    p.add_argument("id", help="<cluster>.<namespace>.<name>")
    p.set_defaults(run="vessel_cli.apps:app_get")
    p = app.add_parser("unmanage", help="leave an app out of the inventory and schedules")
    p.add_argument("id", help="<cluster>.<namespace>.<name>")
    p.set_defaults(run="vessel_cli.apps:app_unmanage")
    p = app.add_parser("manage", help="manage an unmanaged app again")
    p.add_argument("id", help="<cluster>.<namespace>.<name>")
    p.set_defaults(run="vessel_cli.apps:app_manage")

    verbs_protection.add_parsers(resources)

    operation = verbs(resources, "operation", "long-running operations")
    p = operation.add_parser("get")
    p.add_argument("id")
    p.set_defaults(run="vessel_cli.apps:operation_get")
    p = operation.add_parser("wait")
    p.add_argument("id")
    p.add_argument("--timeout", type=float, default=600.0)
    p.set_defaults(run="vessel_cli.apps:operation_wait")
    verbs_infra.add_parsers(resources, operation)
    completion.add_parser(resources, build_parser)
    spread_global_options(parser)
    return parser


def command(reference: str) -> Any:
    """The function a verb names as "module:function", its module imported now."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if hasattr(args, "direct"):  # commands that do not talk to the gateway
        direct = args.direct if callable(args.direct) else command(args.direct)
        code: int = direct(args)
        return code
    run: Command = command(args.run)
    # Imported after parsing: they load gRPC, which `--help` and parse errors never need.
    import grpc

    from vessel_cli.connection import CliConfigError, open_channel, resolve
    from vessel_cli.errors import explain
    from vessel_cli.output import render

    try:
        connection = resolve(args)
        closing, channel = open_channel(connection)
    except CliConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    with closing:
        try:
            results = run(channel, args)
        except grpc.RpcError as exc:
            print(explain(exc), file=sys.stderr)
            return 1
    if not getattr(args, "streams", False):  # a stream printed as it went
        print(render(results, args.output, getattr(args, "related", None)))
    failed = any(getattr(r, "phase", "") in ("Failed", "PartiallyFailed") for r in results)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
