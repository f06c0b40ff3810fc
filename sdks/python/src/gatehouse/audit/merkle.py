"""RFC 6962 / RFC 9162 Merkle tree hashing and proof checks, for proofs
from outside: any malformed input makes a check fail, never raise.

The recursion follows Go's ``sumdb/tlog`` (which the server's ``tlog_tiles``
ports): each step splits the range at the largest power of two below its
size, consuming the proof from its last hash.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

__all__ = ["leaf_hash", "node_hash", "verify_inclusion", "verify_consistency"]

HASH_SIZE = 32


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 ‖ data)."""
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _maxpow2(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def _record_root(proof: Sequence[bytes], lo: int, hi: int, n: int, leaf: bytes) -> bytes | None:
    if lo + 1 == hi:
        # At the leaf: the proof must hold no hash beyond what was used.
        return leaf if not proof else None
    if not proof:
        return None
    k = _maxpow2(hi - lo)
    rest, last = proof[:-1], proof[-1]
    if n < lo + k:
        sub = _record_root(rest, lo, lo + k, n, leaf)
        return None if sub is None else node_hash(sub, last)
    sub = _record_root(rest, lo + k, hi, n, leaf)
    return None if sub is None else node_hash(last, sub)


def _hashes(*hashes: bytes) -> bool:
    # Only 32-byte SHA-256 hashes are hashes here, as on the server.
    return all(len(h) == HASH_SIZE for h in hashes)


def verify_inclusion(proof: Sequence[bytes], size: int, root: bytes, index: int, leaf: bytes) -> bool:
    """Whether ``leaf`` (a leaf hash) is entry ``index`` of the tree of ``size`` leaves with ``root``."""
    if not (0 <= index < size) or not _hashes(root, leaf, *proof):
        return False
    # An inclusion proof is at most one hash per tree level.
    if len(proof) > 64:
        return False
    return _record_root(list(proof), 0, size, index, leaf) == root


def _tree_roots(
    proof: Sequence[bytes], lo: int, hi: int, n: int, old: bytes
) -> tuple[bytes, bytes] | None:
    """The old tree's root and the new tree's root the proof leads to."""
    if n == hi:
        if lo == 0:
            return (old, old) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = _maxpow2(hi - lo)
    rest, last = proof[:-1], proof[-1]
    if n <= lo + k:
        sub = _tree_roots(rest, lo, lo + k, n, old)
        return None if sub is None else (sub[0], node_hash(sub[1], last))
    sub = _tree_roots(rest, lo + k, hi, n, old)
    return None if sub is None else (node_hash(last, sub[0]), node_hash(last, sub[1]))


def verify_consistency(
    proof: Sequence[bytes], old_size: int, old_root: bytes, new_size: int, new_root: bytes
) -> bool:
    """Whether the tree (``new_size``, ``new_root``) extends (``old_size``, ``old_root``)."""
    if old_size < 0 or old_size > new_size or not _hashes(old_root, new_root, *proof):
        return False
    if old_size == new_size:
        # The same tree: nothing to prove, and any proof is malformed.
        return not proof and old_root == new_root
    if old_size == 0:
        # Every tree extends the empty one, but a proof of it means nothing
        # (RFC 9162 treats such a request as invalid).
        return False
    if len(proof) > 128:
        return False
    roots = _tree_roots(list(proof), 0, new_size, old_size, old_root)
    return roots is not None and roots == (old_root, new_root)
