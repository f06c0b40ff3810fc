"""Offline checks of approval tokens, as ``gatehouse token verify`` makes them.

A token is a JWT signed with Ed25519 (``alg`` EdDSA, ``typ``
``gate-approval+jwt``, ``kid`` the RFC 7638 thumbprint of its key). The
checks run in the server's order and the first that fails is named:
signature (with the JWKS), type, time window, audience, action binding.
Single use cannot be checked offline: the server enforces it when the token
is redeemed (:meth:`Gatehouse.redeem`).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import jwt
from jwt.exceptions import InvalidSignatureError, PyJWKError, PyJWTError
from pydantic import BaseModel, ConfigDict, ValidationError

from ._core import ActionLike, action_body
from ._text import rust_debug
from .errors import TokenVerificationError
from .hashing import action_hash
from .models import Jwks

__all__ = ["verify_token", "TokenClaims", "TOKEN_TYPE", "DEFAULT_AUDIENCE"]

TOKEN_TYPE = "gate-approval+jwt"
DEFAULT_AUDIENCE = "gatehouse-executor"


class TokenClaims(BaseModel):
    """The claims of an approval token. Times are Unix seconds."""

    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)

    sub: str
    """The decision id."""
    act: str
    """``sha256:`` of the canonical action the decision approved."""
    dec: str
    """Hex leaf hash of the decision's entry in the transparency log."""
    aud: str
    jti: str
    iat: int
    nbf: int
    exp: int


def verify_token(
    token: str,
    action: ActionLike | str,
    *,
    jwks: Jwks | Mapping[str, Any] | str,
    audience: str = DEFAULT_AUDIENCE,
    now: int | None = None,
) -> TokenClaims:
    """Checks an approval token offline and returns its claims.

    ``action`` is the action about to run (``tool_name`` or ``action``,
    ``subject``, ``payload``: a mapping, :class:`~gatehouse.models.ActionBody`
    or :class:`~gatehouse.models.ApprovedAction`), or its ``sha256:`` action
    hash. ``jwks`` is the server's ``/.well-known/jwks.json`` (a model, a
    mapping or its JSON text) obtained beforehand: nothing is fetched here.
    Raises :class:`~gatehouse.TokenVerificationError` naming the first check
    that fails.
    """
    claims = _verified_signature(token, _keys(jwks))
    at = int(time.time()) if now is None else now
    if at >= claims.exp:
        raise TokenVerificationError("expired", f"the token expired at {claims.exp}")
    if at < claims.nbf:
        raise TokenVerificationError("not_yet_valid", f"the token is not valid before {claims.nbf}")
    if claims.aud != audience:
        raise TokenVerificationError(
            "audience", f"the token is for audience {rust_debug(claims.aud)}, not {rust_debug(audience)}"
        )
    presented = _presented_hash(action)
    if claims.act != presented:
        raise TokenVerificationError(
            "action",
            f"the action differs from the approved one (approved {claims.act}, presented {presented})",
        )
    return claims


def _presented_hash(action: ActionLike | str) -> str:
    if isinstance(action, str):
        if not action.startswith("sha256:"):
            raise TokenVerificationError("action", "an action given as text must be its sha256: action hash")
        return action
    body = action_body(action)
    return action_hash(body.tool_name, body.subject, body.payload or {})


def _keys(jwks: Jwks | Mapping[str, Any] | str) -> list[dict[str, Any]]:
    try:
        if isinstance(jwks, Jwks):
            return [dict(k) for k in jwks.keys]
        if isinstance(jwks, str):
            return [dict(k) for k in Jwks.model_validate_json(jwks).keys]
        return [dict(k) for k in Jwks.model_validate(jwks).keys]
    except ValidationError as e:
        raise TokenVerificationError("unknown_key", f"the key set is not a JWKS: {e}") from None


def _verified_signature(token: str, keys: list[dict[str, Any]]) -> TokenClaims:
    try:
        header = jwt.get_unverified_header(token)
    except PyJWTError:
        raise TokenVerificationError("malformed", "the token is not a well-formed JWT") from None
    if header.get("typ") != TOKEN_TYPE or header.get("alg") != "EdDSA":
        raise TokenVerificationError("type", f"the token's type is not {TOKEN_TYPE}")
    kid = header.get("kid")
    kid = kid if isinstance(kid, str) else ""
    jwk = next((k for k in keys if k.get("kid") == kid), None)
    if jwk is None:
        raise TokenVerificationError("unknown_key", f"the token was signed by an unknown key ({kid})")
    try:
        key = jwt.PyJWK(jwk, algorithm="EdDSA")
    except (PyJWKError, PyJWTError, ValueError, TypeError):
        raise TokenVerificationError("unknown_key", f"the token was signed by an unknown key ({kid})") from None
    try:
        decoded = jwt.PyJWS().decode_complete(token, key=key, algorithms=["EdDSA"])
    except InvalidSignatureError:
        raise TokenVerificationError("signature", "the token's signature is invalid") from None
    except PyJWTError:
        raise TokenVerificationError("malformed", "the token is not a well-formed JWT") from None
    try:
        return TokenClaims.model_validate_json(decoded["payload"])
    except ValidationError:
        raise TokenVerificationError("malformed", "the token is not a well-formed JWT") from None
