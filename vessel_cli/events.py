"""`vessel events tail`: Vessel's events as they happen, or replayed from a time.

By default through the gateway (`EventService.WatchEvents`), which shows a token only the
events its scope covers. The CLI is a client of the gateway only: reading the bus itself
takes a NATS client and NATS credentials.
"""

from __future__ import annotations

import argparse
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
