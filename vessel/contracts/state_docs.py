"""The state tables of `docs/architecture.md`, generated from the state catalogue.

They sit between marker comments, so the prose around them stays hand-written;
`python -m vessel.contracts.docs` rewrites them and `--check` fails when they are stale.
"""

from __future__ import annotations

from vessel.contracts import state

BEGIN = "<!-- state catalogue: generated from vessel/contracts/state.py -->"
END = "<!-- end of state catalogue -->"


def _record(record: str) -> str:
    if record.startswith(state.TEXT):
        return record.removeprefix(state.TEXT)
    return f"`{record.rsplit(':', 1)[-1]}`"


def tables() -> str:
    lines = [
        BEGIN,
        "| bucket | owner | readers | keys | value | holds |",
        "|---|---|---|---|---|---|",
    ]
    for b in state.KV_BUCKETS:
        readers = ", ".join(b.readers)
        lines.append(
            f"| `{b.name}` | {b.owner} | {readers} | `{b.keys}` | {_record(b.record)} | {b.holds} |"
        )
    lines += [
        "",
        "Objects in a backup bucket, besides the repository's own (docs/formats.md):",
        "",
        "| key | written by | read by | holds |",
        "|---|---|---|---|",
    ]
    for o in state.OBJECT_LAYOUTS:
        lines.append(f"| `{o.pattern}` | {o.owner} | {', '.join(o.readers)} | {o.holds} |")
    lines.append(END)
    return "\n".join(lines)


def render_into(text: str) -> str:
    """`text` with the generated tables between the markers; ValueError if they are absent."""
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise ValueError(f"markers {BEGIN!r} … {END!r} not found")
    return text[:start] + tables() + text[end + len(END) :]
