"""The CLI's connection settings (flag > env > file) and its token verbs, against a real
gateway over TLS."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gateway.harness import ADMIN_TOKEN, Pki, Running, Starter, issue, make_settings
from vessel_cli.connection import CliConfigError, Connection, resolve
from vessel_cli.main import build_parser
from vessel_cli.main import main as cli
from vessel_cli.tokens import parse_ttl

pytestmark = pytest.mark.usefixtures("no_client_env")


def parse(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args([*argv, "token", "list"])


def write_config(path: Path, **settings: Any) -> Path:
    path.write_text(yaml.safe_dump(settings))
    path.chmod(0o600)
    return path


@pytest.mark.parametrize(
    ("setting", "flag", "env", "values"),
    [
        ("endpoint", "--endpoint", "VESSEL_ENDPOINT", ("file:1", "env:2", "flag:3")),
        ("token", "--token", "VESSEL_TOKEN", ("t-file", "t-env", "t-flag")),
        ("tls_ca", "--tls-ca", "VESSEL_TLS_CA", ("/f/ca.pem", "/e/ca.pem", "/a/ca.pem")),
    ],
)
def test_flag_beats_env_beats_file(
    setting: str,
    flag: str,
    env: str,
    values: tuple[str, str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    in_file, in_env, in_flag = values
    monkeypatch.setenv(
        "VESSEL_CLI_CONFIG", str(write_config(tmp_path / "c.yaml", **{setting: in_file}))
    )

    def value(c: Connection) -> str:
        return str(getattr(c, setting))

    assert value(resolve(parse())) == in_file
    monkeypatch.setenv(env, in_env)
    assert value(resolve(parse())) == in_env
    assert value(resolve(parse(flag, in_flag))) == in_flag
    monkeypatch.delenv(env)
    assert value(resolve(parse(flag, in_flag))) == in_flag


def test_config_file_defaults_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert resolve(parse()) == Connection()  # nothing anywhere: plaintext to 127.0.0.1:50051
    monkeypatch.delenv("VESSEL_CLI_CONFIG")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "vessel").mkdir()
    write_config(
        tmp_path / "vessel" / "config.yaml",
        endpoint="gw:443",
        tls_ca="pki/ca.pem",
        tls_cert="pki/me.pem",
        tls_key="pki/me.key",
    )
    connection = resolve(parse())
    assert connection.endpoint == "gw:443" and connection.secure
    assert connection.tls_ca == tmp_path / "vessel" / "pki" / "ca.pem"
    assert connection.tls_key == tmp_path / "vessel" / "pki" / "me.key"
    monkeypatch.setenv("VESSEL_TLS", "1")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "elsewhere"))
    assert resolve(parse()).secure


def test_bad_client_settings_are_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path / "c.yaml", endpoint="x:1", tokn="typo")
    monkeypatch.setenv("VESSEL_CLI_CONFIG", str(path))
    with pytest.raises(CliConfigError, match="unknown setting tokn"):
        resolve(parse())
    path.write_text("endpoint: x:1\ntoken: secret\n")
    path.chmod(0o644)
    resolve(parse())
    assert "chmod 600" in capsys.readouterr().err
    assert cli(["--tls-cert", "/a.pem", "token", "list"]) == 2
    assert "go together" in capsys.readouterr().err


def test_ttl_parsing() -> None:
    assert parse_ttl("30d") == 30 * 86400
    assert parse_ttl("12h") == 43200 and parse_ttl("90m") == 5400 and parse_ttl("45") == 45
    assert parse_ttl("never") == parse_ttl("0") == 0
    with pytest.raises(argparse.ArgumentTypeError):
        parse_ttl("3 days")


@pytest.fixture
async def tls_gateway(start_gateway: Starter, pki: Pki) -> Running:
    files = {"cert_file": str(pki.server_cert), "key_file": str(pki.server_key)}
    return await start_gateway(make_settings(tls=files), pki=pki)


Run = Callable[..., Any]


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str]) -> Run:
    async def run(*argv: str) -> tuple[int, str, str]:
        code = await asyncio.to_thread(cli, list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


async def test_cli_reaches_a_tls_gateway_with_a_token_from_env_over_file(
    tls_gateway: Running, pki: Pki, run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    channel = tls_gateway.channel()
    _, viewer = await issue(channel, ADMIN_TOKEN, "viewer")
    config = write_config(
        tmp_path / "c.yaml",
        endpoint=tls_gateway.endpoint,
        tls_ca=str(pki.ca),
        token="vsl_nobody_wrong",
    )
    monkeypatch.setenv("VESSEL_CLI_CONFIG", str(config))
    code, _, err = await run("app", "list")
    assert code == 1 and "UNAUTHENTICATED" in err and "--token" in err and str(config) in err
    monkeypatch.setenv("VESSEL_TOKEN", viewer)
    code, out, err = await run("-o", "json", "app", "list")
    assert code == 0, err
    json.loads(out)
    code, _, err = await run("--token", "vsl_nobody_wrong", "app", "list")
    assert code == 1 and "UNAUTHENTICATED" in err
    code, _, err = await run("backup", "create", "c.shop.web", "--bucket", "default")
    assert code == 1 and "PERMISSION_DENIED" in err
    assert "token with role member or higher" in err
    _, scoped = await issue(channel, ADMIN_TOKEN, "member", clusters=["east"], namespaces=["a"])
    code, _, err = await run("--token", scoped, "backup", "create", "west.b.app", "--bucket", "x")
    assert code == 1 and "PERMISSION_DENIED" in err
    assert "scope is clusters east; namespaces a" in err and "scoped to west/b" in err
    monkeypatch.delenv("VESSEL_CLI_CONFIG")
    code, _, err = await run("--endpoint", tls_gateway.endpoint, "app", "list")  # no TLS
    assert code == 1 and "UNAVAILABLE" in err and "--tls-ca" in err


async def test_cli_token_create_list_revoke(
    tls_gateway: Running, pki: Pki, run: Run, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VESSEL_ENDPOINT", tls_gateway.endpoint)
    monkeypatch.setenv("VESSEL_TLS_CA", str(pki.ca))
    monkeypatch.setenv("VESSEL_TOKEN", ADMIN_TOKEN)
    name = f"cli-{id(run) % 100000}"
    code, out, err = await run(
        "-o", "json", "token", "create", name, "--role", "member",
        "--cluster", "east", "--namespace", "shop", "--namespace", "books", "--ttl", "30d",
    )  # fmt: skip
    assert code == 0, err
    created = json.loads(out)
    secret = created["secret"]
    assert secret.startswith(f"vsl_{name}_") and "shown this once" in err
    assert created["token"]["namespaces"] == ["books", "shop"]
    code, out, _ = await run("token", "create", f"{name}-t", "--role", "viewer")
    assert code == 0 and out.splitlines()[0].split() == ["NAME", "ROLE", "EXPIRES", "SECRET"]
    assert "never" in out.splitlines()[1] and "vsl_" in out.splitlines()[1]

    code, out, _ = await run("token", "list")
    assert code == 0 and secret not in out and "vsl_" not in out
    (row,) = [line for line in out.splitlines() if line.startswith(f"{name} ")]
    assert row.split()[:4] == [name, "member", "east", "books,shop"]
    code, out, _ = await run("-o", "yaml", "token", "list")
    assert code == 0 and secret.split("_", 2)[2] not in out

    code, _, err = await run("--token", secret, "token", "list")
    assert code == 1 and "PERMISSION_DENIED" in err and "role admin" in err
    code, out, err = await run("token", "revoke", name)
    assert code == 0 and f"token {name!r} revoked" in err
    code, _, err = await run("--token", secret, "app", "list")
    assert code == 1 and "UNAUTHENTICATED" in err
    code, _, err = await run("token", "revoke", name)
    assert code == 1 and "NOT_FOUND" in err
