"""Generates docs/events.md, docs/schemas/<type>.json and docs/asyncapi.json from the
subject table, and the state tables of docs/architecture.md from the state catalogue.

`python -m vessel.contracts.docs` writes them; `--check` fails when they are stale.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from vessel.contracts import asyncapi, state_docs, subjects
from vessel.contracts.envelope import CloudEvent

ROOT = Path(__file__).resolve().parents[2]
HEADER = """# Events and commands

Generated from `vessel/contracts/subjects.py` by `make docs`; do not edit by hand.

Every message is a CloudEvents 1.0 event in structured JSON mode
(`Content-Type: application/cloudevents+json`) on NATS JetStream:

- **Events** (facts) go to stream `{events}` on `vessel.evt.<domain>.<entity>.<verb>`,
  retained for 7 days and replayable from any point in time. The events of a cluster's
  agents (domains provisioner, mover, discovery) carry the cluster after the domain,
  `vessel.evt.<domain>.<cluster>.<entity>.<verb>`, so NATS permissions can hold a cluster
  to its own; versions before it published them without the cluster, and consumers still
  take those subjects too while older agents remain.
- **Commands** (requests for work) go to the work-queue stream `{commands}` on
  `vessel.cmd.<service>[.<cluster>].<verb>`; each is consumed by exactly one service.

Envelope: `id` (also the `Nats-Msg-Id` header, so JetStream drops a re-published
duplicate within 2 minutes), `source` (`/clusters/<id>/<service>`), `type`
(`io.vessel.<domain>.<entity>.<verb>.v1`), `subject` (resource path, when there is one),
`time`, `traceparent` (W3C trace context, also a NATS header) and `data` (the payload
below, JSON Schema in `docs/schemas/`). The same table as an AsyncAPI 3.0 document:
`docs/asyncapi.json`.

Guarantees: at-least-once delivery; order is preserved per subject; consumers
de-duplicate on `id` (commands also carry an `operation_id`, their idempotency key).
A message that fails validation, fails permanently or exhausts its 5 deliveries is
terminated and re-published as `io.vessel.system.message.deadlettered.v1`.

Subscribing from another system (durable, survives restarts, replays what it missed):

```
nats consumer add {events} audit --filter 'vessel.evt.protection.>' --pull --deliver all
nats consumer next {events} audit --count 10
```

"""


def schema_path(message: subjects.Message) -> Path:
    return ROOT / "docs" / "schemas" / f"{message.type}.json"


def render_examples(schema: dict[str, Any]) -> list[str]:
    """The payload's own examples, then those of the models it contains."""
    found = [(None, e) for e in schema.get("examples", [])]
    for name, sub in sorted(schema.get("$defs", {}).items()):
        found += [(name, e) for e in sub.get("examples", [])]
    lines = []
    for name, example in found:
        title = "Example" if name is None else f"Example of `{name}`"
        body = json.dumps(example, indent=2)
        lines += [f"{title}:\n", "```json", body, "```", ""]
    return lines


def render() -> dict[Path, str]:
    out: dict[Path, str] = {}
    lines = [HEADER.format(events=subjects.EVENTS_STREAM, commands=subjects.COMMANDS_STREAM)]
    for kind in ("event", "command"):
        lines.append(f"## {kind.capitalize()}s\n")
        for message in sorted((m for m in subjects.ALL if m.kind == kind), key=lambda m: m.type):
            schema = message.model.model_json_schema()
            out[schema_path(message)] = json.dumps(schema, indent=2, sort_keys=True) + "\n"
            lines.append(f"### `{message.type}`\n")
            lines.append(f"{message.description}\n")
            lines.append(f"- subject: `{message.subject}`")
            lines.append(
                f"- payload: `{message.model.__name__}` ([schema](schemas/{message.type}.json))\n"
            )
            lines.append("| field | type | description |\n|---|---|---|")
            for name, prop in schema.get("properties", {}).items():
                kind_text = prop.get("type") or prop.get("$ref", "").rsplit("/", 1)[-1] or "any"
                required = " (required)" if name in schema.get("required", []) else ""
                text = prop.get("description", "")
                lines.append(f"| `{name}` | {kind_text}{required} | {text} |")
            lines.append("")
            lines += render_examples(schema)
    out[ROOT / "docs" / "schemas" / "cloudevent.json"] = (
        json.dumps(CloudEvent.model_json_schema(), indent=2, sort_keys=True) + "\n"
    )
    out[ROOT / "docs" / "events.md"] = "\n".join(lines).rstrip() + "\n"
    architecture = ROOT / "docs" / "architecture.md"
    out[architecture] = state_docs.render_into(architecture.read_text())
    out[ROOT / "docs" / "asyncapi.json"] = (
        json.dumps(asyncapi.document(), indent=2, sort_keys=True) + "\n"
    )
    return out


def main() -> int:
    files = render()
    if "--check" in sys.argv:
        stale = [p for p, text in files.items() if not p.exists() or p.read_text() != text]
        if stale:
            print(
                "stale generated docs (run `make docs`): "
                + ", ".join(str(p.relative_to(ROOT)) for p in stale),
                file=sys.stderr,
            )
            return 1
        return 0
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
