"""`vessel events tail`: Vessel's events straight from NATS (no gateway involved)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime
from typing import Any

from vessel.bus.nats_port import Bus


def add_parser(resources: Any) -> None:
    events = resources.add_parser("events", help="Vessel's events, from NATS").add_subparsers(
        dest="verb", required=True
    )
    p = events.add_parser("tail", help="print events as they happen, or replay from a time")
    p.add_argument(
        "--type",
        action="append",
        default=[],
        metavar="PREFIX",
        help="only types starting with this, e.g. io.vessel.protection (repeatable)",
    )
    p.add_argument("--since", type=datetime.fromisoformat, help="replay from this ISO time")
    p.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    p.add_argument(
        "--nats",
        default=os.environ.get("VESSEL_NATS_URL", "nats://127.0.0.1:4222"),
        help="NATS URL (default $VESSEL_NATS_URL or nats://127.0.0.1:4222)",
    )
    p.set_defaults(direct=tail)


def tail(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_tail(args))
    except KeyboardInterrupt:
        return 0


async def _tail(args: argparse.Namespace) -> int:
    bus = Bus(source="/cli")
    try:
        await bus.connect(args.nats, name="vessel-cli", attempts=3)
    except OSError as exc:
        print(f"error: cannot reach NATS at {args.nats}: {exc}")
        return 1
    shown = 0
    try:
        async for _, event in bus.tail(since=args.since):
            if args.type and not any(event.type.startswith(t) for t in args.type):
                continue
            if args.output == "table":
                print(f"{event.time.isoformat()}  {event.type}  {event.subject or ''}", flush=True)
            else:
                print(json.dumps(event.model_dump(mode="json", exclude_none=True)), flush=True)
            shown += 1
            if args.count and shown >= args.count:
                break
    finally:
        await bus.close()
    return 0
