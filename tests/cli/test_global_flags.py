"""Global flags (-o, --endpoint, --token, --tls*) before the resource or after the verb,
parsed by the real `vessel` parser."""

from __future__ import annotations

import argparse

import pytest

from vessel_cli.connection import resolve
from vessel_cli.main import build_parser
from vessel_cli.options import leaves


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    "argv",
    [
        ("-o", "yaml", "app", "get", "c.shop.web"),
        ("app", "get", "c.shop.web", "-o", "yaml"),
        ("app", "get", "-o", "yaml", "c.shop.web"),
        ("--output", "json", "app", "get", "c.shop.web", "--output", "yaml"),
    ],
)
def test_output_before_after_or_both_with_the_later_winning(argv: tuple[str, ...]) -> None:
    assert parse(*argv).output == "yaml"


def test_defaults_apply_when_no_flag_is_given() -> None:
    args = parse("app", "list")
    assert args.output == "table"
    assert (args.endpoint, args.token, args.tls, args.tls_ca) == (None, None, None, None)


def test_connection_flags_after_the_verb_reach_the_connection(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = {"VESSEL_CLI_CONFIG": "/nonexistent/vessel.yaml", "VESSEL_ENDPOINT": "env:1"}
    after = parse(
        "backup", "list", "--bucket", "b", "--endpoint", "gw:443", "--token", "t-after",
        "--tls-ca", "/ca.pem",
    )  # fmt: skip
    connection = resolve(after, env)
    assert (connection.endpoint, connection.token) == ("gw:443", "t-after")
    assert str(connection.tls_ca) == "/ca.pem" and connection.secure
    both = parse("--token", "t-before", "--endpoint", "a:1", "token", "list", "--token", "t2")
    connection = resolve(both, env)
    assert (connection.endpoint, connection.token) == ("a:1", "t2")
    before = parse("--tls", "token", "list")
    assert resolve(before, env).tls and resolve(parse("token", "list"), env).endpoint == "env:1"


def test_bucket_register_keeps_endpoint_for_the_object_store() -> None:
    """After `bucket register`, --endpoint is the bucket's S3 endpoint; the gateway's goes
    before the resource."""
    required = ["--bucket", "b", "--secret", "ns/s"]
    args = parse("bucket", "register", "offsite", "--endpoint", "s3:9000", *required)
    assert args.s3_endpoint == "s3:9000" and args.endpoint is None
    args = parse(
        "--endpoint", "gw:50051", "bucket", "register", "offsite", "--endpoint", "s3:9000",
        *required, "-o", "json", "--token", "t",
    )  # fmt: skip
    assert (args.s3_endpoint, args.endpoint, args.output, args.token) == (
        "s3:9000",
        "gw:50051",
        "json",
        "t",
    )
    (register,) = [p for p in leaves(build_parser()) if p.prog == "vessel bucket register"]
    assert "not the gateway's" in " ".join(register.format_help().split())


def test_every_verb_takes_every_global_flag() -> None:
    parser = build_parser()
    for leaf in leaves(parser):
        flags = set(leaf._option_string_actions)
        missing = {"-o", "--output", "--token", "--tls", "--tls-ca", "--tls-cert", "--tls-key"}
        missing -= flags
        assert not missing, f"{leaf.prog} lacks {missing}"
        wanted = "s3_endpoint" if leaf.prog == "vessel bucket register" else "endpoint"
        assert leaf._option_string_actions["--endpoint"].dest == wanted, leaf.prog


def test_unknown_flags_and_bad_values_are_still_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit):
        parse("app", "list", "-o", "xml")
    assert "invalid choice: 'xml'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        parse("app", "list", "--colour")
    assert "unrecognized arguments: --colour" in capsys.readouterr().err
