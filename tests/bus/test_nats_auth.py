"""The callout's messages: a new account key as the README says to make one, the JWTs
it signs read back, and requests that are not ones refused with what was wrong."""

from __future__ import annotations

import base64
import json

import nkeys
import pytest

from vessel.bus import nats_auth


def _request(**nats: object) -> bytes:
    head = base64.urlsafe_b64encode(b'{"typ":"JWT","alg":"ed25519-nkey"}').rstrip(b"=")
    body = base64.urlsafe_b64encode(json.dumps({"nats": nats}).encode()).rstrip(b"=")
    return head + b"." + body + b".c2ln"


REQUEST = {
    "type": "authorization_request",
    "server_id": {"id": "NSERVER"},
    "user_nkey": "UUSER",
    "client_info": {"id": 7, "kind": "Leafnode"},
    "connect_opts": {"user": "edge", "pass": "secret"},
}


def test_the_module_prints_a_seed_and_its_issuer(capsys: pytest.CaptureFixture[str]) -> None:
    nats_auth.main()
    seed_line, issuer_line = capsys.readouterr().out.splitlines()
    seed = seed_line.removeprefix("VESSEL_NATS_CALLOUT_SEED=")
    issuer = issuer_line.removeprefix("issuer: ")
    assert seed.startswith("SA") and issuer.startswith("A")
    assert nats_auth.issuer_of(seed) == issuer
    with pytest.raises(ValueError, match="not an nkey seed"):
        nats_auth.issuer_of("SAnot-a-seed")
    user_seed = nkeys.encode_seed(b"\x01" * 32, nkeys.PREFIX_BYTE_USER).decode()
    with pytest.raises(ValueError, match="not an account nkey seed"):
        nats_auth.issuer_of(user_seed)


def test_an_admission_is_signed_by_the_issuer_and_carries_the_permissions() -> None:
    seed, issuer = nats_auth.new_issuer()
    request = nats_auth.CalloutRequest.parse(_request(**REQUEST))
    assert (request.user, request.password, request.client_id) == ("edge", "secret", 7)
    answer = nats_auth.admit(
        request, seed, account="VESSEL", name="edge", publish=("a.>",), subscribe=("b",)
    )
    token = answer.decode()
    head, body, signature = token.split(".")
    pair = nkeys.from_seed(seed.encode())
    assert pair.verify(f"{head}.{body}".encode(), base64.urlsafe_b64decode(signature + "=="))
    claims = nats_auth.claims_of(token)
    assert (claims["iss"], claims["aud"], claims["sub"]) == (issuer, "NSERVER", "UUSER")
    assert claims["nats"]["type"] == "authorization_response" and claims["nats"]["error"] == ""
    user = nats_auth.claims_of(claims["nats"]["jwt"])
    assert (user["aud"], user["name"], user["iss"]) == ("VESSEL", "edge", issuer)
    assert user["nats"]["pub"] == {"allow": ["a.>"]} and user["nats"]["sub"] == {"allow": ["b"]}
    refused = nats_auth.claims_of(nats_auth.refuse(request, seed, "no such cluster").decode())
    assert refused["nats"] == {
        "jwt": "",
        "error": "no such cluster",
        "type": "authorization_response",
        "version": 2,
    }


@pytest.mark.parametrize(
    ("token", "said"),
    [
        (b"one.two", "a JWT has 3 parts, this has 2"),
        (b"a.!!!.c", "not base64url JSON"),
        (_request(type="user"), "not an authorization request"),
        (_request(type="authorization_request"), "authorization request lacks"),
    ],
)
def test_what_is_not_a_callout_request_is_named(token: bytes, said: str) -> None:
    with pytest.raises(nats_auth.CalloutError, match=said):
        nats_auth.CalloutRequest.parse(token)
