"""`vessel events tail`: Vessel's events as they happen, or replayed from a time.

By default through the gateway (`EventService.WatchEvents`), which shows a token only the
events its scope covers. `--nats URL` reads the bus directly instead: an administrator's
and integrator's path, with NATS credentials of its own and no filtering.
"""

from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime
from typing import Any

import grpc
from google.protobuf.json_format import MessageToDict

from vessel.api.v1 import infra_pb2 as ipb
from vessel.api.v1 import infra_pb2_grpc as irpc


def _show(args: argparse.Namespace, time: datetime, event: dict[str, Any]) -> None:
    if args.output == "table":
        print(f"{time.isoformat()}  {event['type']}  {event.get('subject') or ''}", flush=True)
    else:
        print(json.dumps(event), flush=True)


def tail(ch: grpc.Channel, args: argparse.Namespace) -> list[Any]:
    """Through the gateway; prints as events arrive (nothing is left to render after)."""
    request = ipb.WatchEventsRequest(types=args.type, max_events=args.count)
    if args.since is not None:
        request.since.FromDatetime(args.since)
    try:
        for event in irpc.EventServiceStub(ch).WatchEvents(request):
            shown = MessageToDict(event, preserving_proto_field_name=True)
            shown = {"specversion": "1.0", **shown, "data": shown.get("data", {})}
            _show(args, event.time.ToDatetime().astimezone(), shown)
    except KeyboardInterrupt:
        pass
    return []


def tail_nats(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(_tail_nats(args))
    except KeyboardInterrupt:
        return 0


async def _tail_nats(args: argparse.Namespace) -> int:
    from vessel.bus.nats_port import Bus

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
            _show(args, event.time, event.model_dump(mode="json", exclude_none=True))
            shown += 1
            if args.count and shown >= args.count:
                break
    finally:
        await bus.close()
    return 0
