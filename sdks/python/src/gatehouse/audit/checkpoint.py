"""Signed checkpoints: a C2SP tlog-checkpoint inside a C2SP signed note,
signed with Ed25519, checked against a verifier key the caller trusts
(``name+keyid+base64(0x01 ‖ public key)``, as ``gatehouse log key`` prints it).

A port of the server's ``checkpoint::verify`` and of what it calls in the
``signed_note`` and ``tlog_tiles`` crates, with the same refusals.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from .._text import b64decode_strict, rust_debug

__all__ = ["Checkpoint", "CheckpointError", "verify_checkpoint"]

MAX_NOTE_SIZE = 1_000_000
MAX_NOTE_SIGNATURES = 100
ALG_ED25519 = 1


class CheckpointError(Exception):
    """Why a checkpoint is not verified (the message is the server's)."""


@dataclass(frozen=True)
class Checkpoint:
    """What a verified checkpoint commits the log to."""

    origin: str
    size: int
    root: bytes


def _key_name_valid(name: str) -> bool:
    return bool(name) and "+" not in name and not any(ch.isspace() for ch in name)


def _key_id(name: str, key: bytes) -> int:
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + key).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class _Verifier:
    name: str
    key_id: int
    key: Ed25519PublicKey


def _verifier(vkey: str) -> _Verifier:
    def bad(reason: str) -> CheckpointError:
        return CheckpointError(f"the verifier key is malformed: {reason}")

    name, sep, rest = vkey.partition("+")
    id16, sep2, key64 = rest.partition("+")
    if not sep or not sep2 or not re.fullmatch(r"\+?[0-9A-Fa-f]+", id16):
        raise bad("malformed verifier key")
    key_id = int(id16, 16)
    key = b64decode_strict(key64)
    if key is None or key_id >= 2**32:
        raise bad("malformed verifier key")
    if len(id16) != 8 or not _key_name_valid(name) or not key:
        raise bad("malformed verifier key")
    if key_id != _key_id(name, key):
        raise bad("invalid verifier ID")
    if key[0] != ALG_ED25519:
        raise bad("unknown verifier algorithm")
    if len(key) != 33:
        raise bad("malformed verifier key")
    try:
        public = Ed25519PublicKey.from_public_bytes(key[1:])
    except ValueError:
        raise bad("malformed verifier key") from None
    return _Verifier(name, key_id, public)


@dataclass(frozen=True)
class _Signature:
    name: str
    key_id: int
    sig: bytes


def _note(text: str) -> tuple[bytes, list[_Signature]] | None:
    """The signed text and its signatures, or None if the note is malformed."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    if len(raw) > MAX_NOTE_SIZE or any(ch < " " and ch != "\n" for ch in text):
        return None
    body, sep, block = text.rpartition("\n\n")
    if not sep or not block.endswith("\n"):
        return None
    signatures: list[_Signature] = []
    for line in block[:-1].split("\n"):
        if not line.startswith("\u2014 "):
            return None
        name, space, b64 = line[2:].partition(" ")
        sig = b64decode_strict(b64) if space else None
        if sig is None or not b64 or len(sig) < 5 or not _key_name_valid(name):
            return None
        signatures.append(_Signature(name, int.from_bytes(sig[:4], "big"), sig[4:]))
        if len(signatures) > MAX_NOTE_SIGNATURES:
            return None
    return (body + "\n").encode("utf-8"), signatures


def _signed_by(text: bytes, signatures: list[_Signature], verifier: _Verifier) -> bool:
    """Whether the verifier's key signed the note, as ``signed_note`` judges
    it: one bad signature by that key fails the note; other keys' are ignored."""
    verified = False
    for s in signatures:
        if (s.name, s.key_id) != (verifier.name, verifier.key_id):
            continue
        if verified:
            continue  # the same key's signature again
        if len(s.sig) != 64:
            return False
        try:
            verifier.key.verify(s.sig, text)
        except InvalidSignature:
            return False
        verified = True
    return verified


def _checkpoint_body(text: bytes) -> Checkpoint | None:
    """A strictly formatted checkpoint body: origin, size, base64 root hash,
    then optional non-empty extension lines, each ending in a newline."""
    decoded = text.decode("utf-8")
    if not decoded.endswith("\n"):
        return None
    lines = decoded[:-1].split("\n")
    if len(lines) < 3 or any(not line for line in lines[3:]):
        return None
    origin, n_str, h_str = lines[0], lines[1], lines[2]
    if not origin or not re.fullmatch(r"[0-9]+", n_str) or str(int(n_str)) != n_str:
        return None
    size = int(n_str)
    root = b64decode_strict(h_str)
    if size >= 2**64 or root is None or len(root) != 32:
        return None
    return Checkpoint(origin, size, root)


def verify_checkpoint(note_text: str, verifier_key: str) -> Checkpoint:
    """Checks a signed checkpoint against a verifier key the caller trusts,
    and that its origin is the key's name. Raises :class:`CheckpointError`."""
    verifier = _verifier(verifier_key.strip())
    note = _note(note_text)
    if note is None:
        raise CheckpointError("the checkpoint is not a well-formed signed note")
    text, signatures = note
    if not _signed_by(text, signatures, verifier):
        raise CheckpointError("the checkpoint is not signed by the given key")
    body = _checkpoint_body(text)
    if body is None:
        raise CheckpointError("the checkpoint is not a well-formed signed note")
    if body.origin != verifier.name:
        raise CheckpointError(
            f"the checkpoint's origin {rust_debug(body.origin)} is not the key's name {rust_debug(verifier.name)}"
        )
    return body
