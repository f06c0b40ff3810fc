//! Proof checking for untrusted input. `tlog_tiles` documents that its
//! checkers may panic on impossible arithmetic, so every input is bounded
//! here first and any remaining panic is turned into a rejection: a proof
//! from outside can make verification fail, never crash it.

use tlog_tiles::tlog::{self, Hash};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    #[error("index {index} is not inside a tree of size {size}")]
    OutOfRange { index: u64, size: u64 },
    #[error("the older tree (size {old}) is larger than the newer one (size {new})")]
    SizesOutOfOrder { old: u64, new: u64 },
    #[error("the proof does not match the root hash")]
    Mismatch,
}

/// RFC 6962 leaf hash: SHA-256(0x00 ‖ bytes).
pub fn leaf_hash(bytes: &[u8]) -> Hash {
    tlog::record_hash(bytes)
}

/// Checks that `leaf` is entry `index` of the tree of `size` with `root`.
pub fn verify_inclusion(
    proof: &[Hash],
    size: u64,
    root: Hash,
    index: u64,
    leaf: Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::OutOfRange { index, size });
    }
    // An inclusion proof is at most one hash per tree level.
    if proof.len() > 64 {
        return Err(ProofError::Mismatch);
    }
    let proof = proof.to_vec();
    guarded(move || tlog::check_record(&proof, size, root, index, leaf).is_ok())
}

/// Checks that the tree (`new_size`, `new_root`) extends (`old_size`, `old_root`).
pub fn verify_consistency(
    proof: &[Hash],
    old_size: u64,
    old_root: Hash,
    new_size: u64,
    new_root: Hash,
) -> Result<(), ProofError> {
    if old_size > new_size {
        return Err(ProofError::SizesOutOfOrder {
            old: old_size,
            new: new_size,
        });
    }
    if old_size == new_size {
        // Same tree: nothing to prove, and any proof is malformed.
        return if proof.is_empty() && old_root == new_root {
            Ok(())
        } else {
            Err(ProofError::Mismatch)
        };
    }
    if old_size == 0 {
        // Every tree extends the empty tree, but a proof of it means nothing;
        // RFC 9162 treats such a request as invalid.
        return Err(ProofError::Mismatch);
    }
    if proof.len() > 128 {
        return Err(ProofError::Mismatch);
    }
    let proof = proof.to_vec();
    guarded(move || tlog::check_tree(&proof, new_size, new_root, old_size, old_root).is_ok())
}

fn guarded(check: impl FnOnce() -> bool + std::panic::UnwindSafe) -> Result<(), ProofError> {
    match std::panic::catch_unwind(check) {
        Ok(true) => Ok(()),
        _ => Err(ProofError::Mismatch),
    }
}
