"""Offline verification: Decision Packets, signed checkpoints, Merkle
proofs and log entries, checked without trusting the server."""

from __future__ import annotations

from .checkpoint import Checkpoint, CheckpointError, verify_checkpoint
from .merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "verify_checkpoint",
    "leaf_hash",
    "node_hash",
    "verify_inclusion",
    "verify_consistency",
]
