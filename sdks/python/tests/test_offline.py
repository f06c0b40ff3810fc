"""The offline building blocks against published test vectors and the
server's own known answers: RFC 8785 (testdata/jcs), RFC 6962 proofs
(testdata/merkle), C2SP signed notes, log entries and the action hash."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from gatehouse import action_hash, canonical_json
from gatehouse.audit import verify_consistency, verify_inclusion
from gatehouse.audit.checkpoint import CheckpointError, _note, _signed_by, _verifier, verify_checkpoint
from gatehouse.audit.entries import EntryError, parse_entry
from gatehouse.audit.rules import unix, unix_ms

TESTDATA = Path(__file__).resolve().parents[3] / "testdata"


@pytest.mark.parametrize("name", sorted(p.name for p in (TESTDATA / "jcs" / "input").iterdir()))
def test_rfc8785_vectors(name: str) -> None:
    value = json.loads((TESTDATA / "jcs" / "input" / name).read_text(encoding="utf-8"))
    assert canonical_json(value) == (TESTDATA / "jcs" / "output" / name).read_bytes()
    hex_text = (TESTDATA / "jcs" / "outhex" / name.replace(".json", ".txt")).read_text().split()
    assert canonical_json(value) == bytes(int(h, 16) for h in hex_text)


@pytest.mark.parametrize(
    "number,text",
    [
        (0.0, "0"), (-0.0, "0"), (1.0, "1"), (-1.5, "-1.5"), (0.1, "0.1"), (1e21, "1e+21"), (1e20, "100000000000000000000"),
        (1e-7, "1e-7"), (1.5e-7, "1.5e-7"), (0.000001, "0.000001"), (123456789.125, "123456789.125"),
        (5e-324, "5e-324"), (1.7976931348623157e308, "1.7976931348623157e+308"), (9007199254740993.0, "9007199254740992"),
        (2**63 - 1, "9223372036854775807"), (2**64 - 1, "18446744073709551615"), (-(2**63), "-9223372036854775808"),
        (2**64, "18446744073709552000"),
    ],
)
def test_numbers_are_written_as_the_server_writes_them(number: float, text: str) -> None:
    assert canonical_json(number) == text.encode()


def test_strings_keys_and_refusals() -> None:
    assert canonical_json({"b": "\u2028\x7f\x1f\"\\", "a": [None, True]}) == b'{"a":[null,true],"b":"\xe2\x80\xa8\x7f\\u001f\\"\\\\"}'
    # Keys sort by UTF-16 code units: U+1F600 (a surrogate pair) before U+FFFD.
    assert canonical_json({"\ufffd": 1, "\U0001f600": 2}).decode() == '{"\U0001f600":2,"\ufffd":1}'
    for bad in [float("nan"), float("inf"), {1: 2}, "\ud800", object()]:
        with pytest.raises(ValueError):
            canonical_json(bad)


def test_the_readme_action_hash_example() -> None:
    expected = b'{"action":"issue_refund","payload":{"amount":5,"currency":"usd"},"subject":"cus_1"}'
    import hashlib

    assert action_hash("issue_refund", "cus_1", {"currency": "usd", "amount": 5}) == (
        "sha256:" + hashlib.sha256(expected).hexdigest()
    )
    assert action_hash(" issue_refund ", "cus_1\n", {"currency": "usd", "amount": 5}) == action_hash(
        "issue_refund", "cus_1", {"amount": 5, "currency": "usd"}
    )


def merkle_vectors(kind: str) -> list[Path]:
    return sorted((TESTDATA / "merkle" / kind).rglob("*.json"))


def b(text: str) -> bytes:
    return base64.b64decode(text)


@pytest.mark.parametrize("path", merkle_vectors("inclusion"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rfc6962_inclusion_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_inclusion([b(p) for p in v["proof"] or []], v["treeSize"], b(v["root"]), v["leafIdx"], b(v["leafHash"]))
    assert ok is not v["wantErr"], v["desc"]


# The one vector that expects success for roots that are not 32 bytes: like
# the server (crates/gatehouse-log/tests/merkle_vectors.rs), this SDK only
# takes 32-byte SHA-256 hashes as hashes, and rejects it.
NON_32_BYTE_ROOTS = "sizes-are-equal-one-and-proof-is-empty"


@pytest.mark.parametrize("path", merkle_vectors("consistency"), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_rfc6962_consistency_vectors(path: Path) -> None:
    v = json.loads(path.read_text())
    ok = verify_consistency([b(p) for p in v["proof"] or []], v["size1"], b(v["root1"]), v["size2"], b(v["root2"]))
    want = False if path.stem == NON_32_BYTE_ROOTS else not v["wantErr"]
    assert ok is want, v["desc"]


# The signed_note crate's own example (also Go's sumdb/note).
NOTE_KEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
NOTE = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
    "\n"
    "\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


def test_signed_notes_verify_only_with_their_key() -> None:
    verifier = _verifier(NOTE_KEY)
    note = _note(NOTE)
    assert note is not None
    text, sigs = note
    assert _signed_by(text, sigs, verifier)
    forged = _note(NOTE.replace("cryptography", "blockchain"))
    assert forged is not None and not _signed_by(*forged, verifier)
    for malformed in [NOTE.rstrip("\n"), NOTE.replace("\u2014 ", "- "), NOTE.replace("\n\n", "\n"), "x\t\n\n" + NOTE[-90:]]:
        assert _note(malformed) is None
    # It is a note, not a checkpoint: the signature checks out, the body does not.
    with pytest.raises(CheckpointError, match="not a well-formed signed note"):
        verify_checkpoint(NOTE, NOTE_KEY)
    for bad_key, reason in [
        ("PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "invalid verifier ID"),
        ("PeterNeumann+c74f20a3", "malformed verifier key"),
        ("Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW", "malformed verifier key"),
    ]:
        with pytest.raises(CheckpointError, match=reason):
            verify_checkpoint(NOTE, bad_key)


# Known answers from the server's entry tests (crates/gatehouse-log/src/entry/tests.rs).
V1_LEAVES = [
    '{"comment_hash":null,"decision":"approve","id":"dec_1","reviewer":"k2","ts":"1970-01-01T00:00:00Z","type":"review","v":1}',
    '{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}',
    '{"event":"retired","id":"kid1","role":"token-signing","ts":"1970-01-01T00:00:00Z","type":"key_event","v":1}',
    '{"exp":"1970-01-01T00:00:00Z","id":"dec_1","jti":"tok_1","kid":"kid1","ts":"1970-01-01T00:00:00Z","type":"token_issued","v":1}',
    '{"event":"created","id":"k1","role":"agent","ts":"1970-01-01T00:00:00Z","type":"key_event","v":2}',
]


@pytest.mark.parametrize("leaf", V1_LEAVES)
def test_known_leaves_parse(leaf: str) -> None:
    entry = parse_entry(leaf.encode())
    assert entry.ts == "1970-01-01T00:00:00Z" and entry.type in leaf


@pytest.mark.parametrize(
    "leaf,error",
    [
        ('{"id":"dec_1", "ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', "not the canonical JSON"),
        ('{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":3}', "entry version 3 is not supported"),
        ('{"extra":1,"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', "not the canonical JSON"),
        ('{"id":"dec_1","ts":"1970-01-01T00:00:00Z","type":"expiry","v":2}', "a version 2 entry of type expiry"),
        ('{"id":"dec_1","prev":"ab","ts":"1970-01-01T00:00:00Z","type":"expiry","v":1}', "a version 1 entry"),
        ('{"type":"unknown"}', "not a log entry"),
        ('{"comment_hash":null,"decision":"maybe","id":"d","reviewer":"k","ts":"t","type":"review","v":1}', "not a log entry"),
        ('[1]', "not a log entry"),
    ],
)
def test_what_is_not_an_entry_is_refused(leaf: str, error: str) -> None:
    with pytest.raises(EntryError, match=error):
        parse_entry(leaf.encode())


def test_rfc3339_times() -> None:
    assert unix("1970-01-01T00:00:00Z") == 0
    assert unix_ms("2026-12-02T15:12:22.463Z") == 1796224342463
    assert unix("2026-12-02T16:12:22.463+01:00") == unix("2026-12-02T15:12:22Z")
    assert unix("2026-02-30T00:00:00Z") is None and unix("yesterday") is None
