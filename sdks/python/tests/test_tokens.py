"""``verify_token`` offline on tokens the live server issued, good and
tampered, each failure naming its check; and the same verdicts and words as
``gatehouse token verify``."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from conftest import AGENT, unique
from gatehouse import Gatehouse, TokenVerificationError, action_hash, verify_token
from gatehouse.models import GateView, Jwks
from gateserver import Server, cli


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def reencode(token: str, header: dict[str, Any] | None = None, claims: dict[str, Any] | None = None) -> str:
    """The token with its header or claims replaced, keeping the old signature."""
    h, c, sig = token.split(".")
    if header is not None:
        h = b64(json.dumps(header).encode())
    if claims is not None:
        c = b64(json.dumps(claims).encode())
    return f"{h}.{c}.{sig}"


@pytest.fixture(scope="module")
def issued(server: Server) -> tuple[GateView, Jwks]:
    with Gatehouse(server.url, api_key=server.keys[AGENT]) as gate:
        d = gate.request(agent="billing", action="issue_refund", risk="low", subject=unique(),
                         context={"amount": 1234, "currency": "usd", "note": None})
        return d, gate.jwks()


def test_a_good_token_verifies_with_any_form_of_the_action(issued: tuple[GateView, Jwks]) -> None:
    d, jwks = issued
    assert d.approval_token and d.approved_action
    a = d.approved_action
    claims = verify_token(d.approval_token, a, jwks=jwks)
    assert (claims.sub, claims.act, claims.dec, claims.aud) == (d.id, a.action_hash, d.receipt_hash, "gatehouse-executor")
    assert claims.exp > claims.nbf == claims.iat
    as_mapping = {"action": a.tool_name, "subject": f"  {a.subject} ", "payload": dict(a.payload)}
    assert verify_token(d.approval_token, as_mapping, jwks=jwks.model_dump()) == claims
    assert verify_token(d.approval_token, a.action_hash, jwks=jwks.model_dump_json()) == claims


def failing(token: str, action: Any, jwks: Any, **kw: Any) -> TokenVerificationError:
    with pytest.raises(TokenVerificationError) as e:
        verify_token(token, action, jwks=jwks, **kw)
    return e.value


def test_each_check_fails_on_its_own(issued: tuple[GateView, Jwks]) -> None:
    d, jwks = issued
    token, a = d.approval_token, d.approved_action
    assert token and a
    claims = json.loads(unb64(token.split(".")[1]))
    header = json.loads(unb64(token.split(".")[0]))

    assert failing(token, {**a.model_dump(), "payload": {**a.payload, "amount": 1235}}, jwks).check == "action"
    assert failing(token, {**a.model_dump(), "subject": "cus_other"}, jwks).check == "action"
    assert failing(reencode(token, claims={**claims, "act": action_hash("issue_refund", a.subject, {})}), a, jwks).check == "signature"
    h, c, sig = token.split(".")
    flipped = b64(bytes([unb64(sig)[0] ^ 1]) + unb64(sig)[1:])
    assert failing(f"{h}.{c}.{flipped}", a, jwks).check == "signature"
    assert failing(reencode(token, header={**header, "typ": "JWT"}), a, jwks).check == "type"
    assert failing(reencode(token, header={**header, "alg": "HS256"}), a, jwks).check == "type"
    e = failing(reencode(token, header={**header, "kid": "someone-else"}), a, jwks)
    assert (e.check, str(e)) == ("unknown_key", "the token was signed by an unknown key (someone-else)")
    assert failing(token, a, {"keys": []}).check == "unknown_key"
    assert failing("not.a.jwt", a, jwks).check == "malformed"
    assert failing(token, a, jwks, now=claims["exp"]).check == "expired"
    assert str(failing(token, a, jwks, now=claims["exp"])) == f"the token expired at {claims['exp']}"
    assert failing(token, a, jwks, now=claims["nbf"] - 1).check == "not_yet_valid"
    e = failing(token, a, jwks, audience="billing-worker")
    assert (e.check, str(e)) == ("audience", 'the token is for audience "gatehouse-executor", not "billing-worker"')


def test_another_servers_keys_do_not_verify(issued: tuple[GateView, Jwks], server_with: Any) -> None:
    d, _ = issued
    other = server_with()
    with Gatehouse(other.url, api_key=other.keys[AGENT]) as gate:
        assert failing(d.approval_token or "", d.approved_action, gate.jwks()).check == "unknown_key"


def cli_verdict(tmp_path: Path, token: str, action: dict[str, Any], jwks: Jwks, audience: str | None = None) -> str:
    (tmp_path / "action.json").write_text(json.dumps(action))
    (tmp_path / "jwks.json").write_text(jwks.model_dump_json())
    args = ["token", "verify", token, "--action", str(tmp_path / "action.json"), "--jwks", str(tmp_path / "jwks.json")]
    if audience:
        args += ["--audience", audience]
    out = cli(*args, check=False)
    return out.splitlines()[0]


def sdk_verdict(token: str, action: dict[str, Any], jwks: Jwks, audience: str | None = None) -> str:
    try:
        verify_token(token, action, jwks=jwks, **({"audience": audience} if audience else {}))
    except TokenVerificationError as e:
        return f"FAIL  {e}"
    return "ok: signature, type, time window, audience and action binding all pass"


def test_the_same_verdicts_and_words_as_the_cli(issued: tuple[GateView, Jwks], tmp_path: Path) -> None:
    d, jwks = issued
    token, a = d.approval_token, d.approved_action
    assert token and a
    good = {"tool_name": a.tool_name, "subject": a.subject, "payload": a.payload}
    claims = json.loads(unb64(token.split(".")[1]))
    header = json.loads(unb64(token.split(".")[0]))
    cases: list[tuple[str, dict[str, Any], str | None]] = [
        (token, good, None),
        (token, {**good, "payload": {"amount": 1}}, None),
        (token, good, "someone"),
        (reencode(token, claims={**claims, "aud": "x"}), good, None),
        (reencode(token, header={**header, "typ": "at+jwt"}), good, None),
        (reencode(token, header={**header, "kid": "nope"}), good, None),
        ("garbage", good, None),
    ]
    for t, action, audience in cases:
        assert sdk_verdict(t, action, jwks, audience) == cli_verdict(tmp_path, t, action, jwks, audience)
