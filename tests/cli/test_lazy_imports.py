"""Parsing a `vessel` command line loads nothing heavy: gRPC, the API stubs, YAML,
pydantic and OpenTelemetry are imported by the verb that runs, so `--help`, completion
and argument errors stay instant and every call starts sending sooner. Checked in a fresh
interpreter (this one has them all loaded); nothing here is timed."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from vessel.contracts.hooks import STAGES
from vessel.telemetry import tracing
from vessel_cli import connection
from vessel_cli.options import HOOK_STAGES

HEAVY = ("grpc", "vessel.api", "yaml", "pydantic", "opentelemetry", "google.protobuf", "nats")
PROBE = """
import json, sys
import vessel_cli.main as cli
args = cli.build_parser().parse_args(sys.argv[1:])
loaded = sorted(m for m in sys.modules if m.split(".")[0] in {"grpc", "yaml", "pydantic",
    "opentelemetry", "google", "nats"} or m.startswith("vessel.api"))
print(json.dumps({"run": getattr(args, "run", None), "loaded": loaded}))
"""


def loaded_after(*argv: str) -> tuple[str | None, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, check=True
    )
    found = json.loads(done.stdout)
    return found["run"], found["loaded"]


def test_parsing_a_command_imports_no_grpc_stubs_yaml_or_pydantic() -> None:
    for argv in (
        ("app", "list"),
        ("-o", "yaml", "schedule", "create", "c.n.a", "--bucket", "b", "--daily", "--at", "02:30"),
        ("hook", "put", "c.n.a", "h", "--stage", "pre-backup", "--fsfreeze"),
        ("token", "create", "ci", "--role", "viewer", "--ttl", "30d"),
        ("events", "tail", "--count", "1"),
    ):
        run, loaded = loaded_after(*argv)
        heavy = [m for m in loaded if m.startswith(HEAVY)]
        assert not heavy, f"parsing {' '.join(argv)} imported {heavy}"
        assert run is None or run.startswith("vessel_cli.")


def test_the_probe_would_see_a_heavy_import() -> None:
    """The check above can fail: a module imported while parsing shows up."""
    done = subprocess.run(
        [sys.executable, "-c", "import yaml\n" + PROBE, "app", "list"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "yaml" in json.loads(done.stdout)["loaded"]


def test_constants_repeated_for_speed_match_their_source() -> None:
    assert HOOK_STAGES == STAGES
    assert connection.OTEL_ENDPOINT_VARIABLES == tracing.OTEL_ENDPOINT_VARIABLES


def test_untraced_calls_still_carry_trace_context() -> None:
    """Without OpenTelemetry loaded each call still sends a traceparent: in the caller's
    trace (TRACEPARENT) with its sampled flag, a new span id per call."""
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"
    entries = connection.trace_context(parent)
    (name, one), (_, two) = entries()[0], entries()[0]
    assert name == "traceparent"
    assert one.split("-")[1] == two.split("-")[1] == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert len({one.split("-")[2], two.split("-")[2], "00f067aa0ba902b7"}) == 3
    assert one.endswith("-00") and two.endswith("-00")
    fresh = connection.trace_context("garbage")()[0][1]
    assert re.fullmatch(r"00-[0-9a-f]{32}-[0-9a-f]{16}-01", fresh)
    assert fresh.split("-")[1] != connection.trace_context(None)()[0][1].split("-")[1]
