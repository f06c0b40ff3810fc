//! Tree operations over stored hashes, for any storage.
//!
//! The log stores the hashes of `tlog_tiles`' layout (every leaf hash and
//! every complete subtree hash, by stored-hash index). Each operation below
//! asks for all the stored hashes it needs in a single read, so a backend
//! can run it in two steps — learn the indexes ([`Op::needs`]), fetch them
//! however it likes (in a transaction, asynchronously), then finish
//! ([`Op::run`]). No operation reads the whole tree.

use std::collections::HashMap;
use std::sync::Mutex;

use tlog_tiles::tlog::{self, Hash, HashReader};

#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("stored hash {0} is missing")]
    Missing(u64),
    #[error("tree computation failed: {0}")]
    Tlog(String),
}

/// One tree computation, independent of where hashes live.
pub enum Op {
    /// The stored hashes to write when leaf `n` (hash `leaf`) is appended.
    Append { n: u64, leaf: Hash },
    /// The root of the tree of `size` leaves.
    Root { size: u64 },
    /// Inclusion proof of leaf `index` in the tree of `size` leaves.
    Inclusion { index: u64, size: u64 },
    /// Consistency proof from `old` leaves to `new` leaves.
    Consistency { old: u64, new: u64 },
}

/// Records the requested indexes, then refuses, so nothing is computed.
struct Recorder(Mutex<Vec<u64>>);

impl HashReader for Recorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        if let Ok(mut seen) = self.0.lock() {
            seen.extend_from_slice(indexes);
        }
        Err(tlog::Error::IndexesNotInTree)
    }
}

struct Fetched<'a>(&'a HashMap<u64, Hash>);

impl HashReader for Fetched<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(tlog::Error::IndexesNotInTree))
            .collect()
    }
}

/// What an operation produced.
#[derive(Debug, PartialEq)]
pub enum Output {
    /// (stored hash index, hash) pairs to write.
    Stored(Vec<(u64, Hash)>),
    Root(Hash),
    Proof(Vec<Hash>),
}

impl Op {
    fn exec(&self, r: &dyn HashReader) -> Result<Output, tlog::Error> {
        let r = &DynReader(r);
        Ok(match *self {
            Op::Append { n, leaf } => {
                let hashes = tlog::stored_hashes_for_record_hash(n, leaf, r)?;
                let first = tlog::stored_hash_index(0, n);
                Output::Stored((first..).zip(hashes).collect())
            }
            Op::Root { size } => Output::Root(tlog::tree_hash(size, r)?),
            Op::Inclusion { index, size } => Output::Proof(tlog::prove_record(size, index, r)?),
            Op::Consistency { old, new } => Output::Proof(tlog::prove_tree(new, old, r)?),
        })
    }

    fn valid(&self) -> Result<(), TreeError> {
        let bad = |m: &str| Err(TreeError::Tlog(m.to_string()));
        match *self {
            Op::Inclusion { index, size } if index >= size => bad("index outside the tree"),
            Op::Consistency { old, new } if old == 0 || old > new => bad("sizes out of order"),
            _ => Ok(()),
        }
    }

    /// The stored hash indexes this operation will read.
    pub fn needs(&self) -> Result<Vec<u64>, TreeError> {
        self.valid()?;
        let recorder = Recorder(Mutex::new(Vec::new()));
        // Operations that need nothing (the first leaf, the empty tree)
        // complete here; their indexes list is simply empty.
        let _ = self.exec(&recorder);
        Ok(recorder.0.into_inner().unwrap_or_default())
    }

    /// Runs the operation with the hashes fetched for [`Op::needs`].
    pub fn run(&self, fetched: &HashMap<u64, Hash>) -> Result<Output, TreeError> {
        self.valid()?;
        self.exec(&Fetched(fetched)).map_err(|e| match e {
            tlog::Error::IndexesNotInTree => {
                let missing = self
                    .needs()
                    .ok()
                    .and_then(|n| n.into_iter().find(|i| !fetched.contains_key(i)));
                TreeError::Missing(missing.unwrap_or_default())
            }
            other => TreeError::Tlog(other.to_string()),
        })
    }
}

/// `tlog_tiles` takes `&impl HashReader`; this lets one function serve both readers.
struct DynReader<'a>(&'a dyn HashReader);

impl HashReader for DynReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, tlog::Error> {
        self.0.read_hashes(indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::{leaf_hash, verify_consistency, verify_inclusion};

    /// An in-memory log built only through `Op`, as a backend would.
    fn build(n: u64) -> HashMap<u64, Hash> {
        let mut stored = HashMap::new();
        for i in 0..n {
            let op = Op::Append {
                n: i,
                leaf: leaf_hash(format!("leaf {i}").as_bytes()),
            };
            let fetched: HashMap<u64, Hash> = op
                .needs()
                .unwrap()
                .into_iter()
                .map(|k| (k, stored[&k]))
                .collect();
            let Output::Stored(new) = op.run(&fetched).unwrap() else {
                panic!()
            };
            stored.extend(new);
        }
        stored
    }

    fn run(op: Op, stored: &HashMap<u64, Hash>) -> Output {
        let fetched = op
            .needs()
            .unwrap()
            .into_iter()
            .map(|k| (k, stored[&k]))
            .collect();
        op.run(&fetched).unwrap()
    }

    #[test]
    fn proofs_from_stored_hashes_verify() {
        let stored = build(37);
        for size in [1u64, 2, 7, 8, 37] {
            let Output::Root(root) = run(Op::Root { size }, &stored) else {
                panic!()
            };
            for index in [0, size / 2, size - 1] {
                let Output::Proof(p) = run(Op::Inclusion { index, size }, &stored) else {
                    panic!()
                };
                let leaf = leaf_hash(format!("leaf {index}").as_bytes());
                verify_inclusion(&p, size, root, index, leaf).unwrap();
                assert!(verify_inclusion(&p, size, root, index, leaf_hash(b"other")).is_err());
            }
            for old in 1..size {
                let Output::Root(old_root) = run(Op::Root { size: old }, &stored) else {
                    panic!()
                };
                let Output::Proof(p) = run(Op::Consistency { old, new: size }, &stored) else {
                    panic!()
                };
                verify_consistency(&p, old, old_root, size, root).unwrap();
            }
        }
    }

    #[test]
    fn root_matches_rfc6962_for_small_trees() {
        let stored = build(3);
        let l: Vec<Hash> = (0..3)
            .map(|i| leaf_hash(format!("leaf {i}").as_bytes()))
            .collect();
        let expected = tlog::node_hash(tlog::node_hash(l[0], l[1]), l[2]);
        assert_eq!(run(Op::Root { size: 3 }, &stored), Output::Root(expected));
    }

    #[test]
    fn missing_hashes_and_bad_ranges_are_errors() {
        assert!(Op::Inclusion { index: 3, size: 3 }.needs().is_err());
        assert!(Op::Consistency { old: 4, new: 3 }.needs().is_err());
        assert!(matches!(
            Op::Root { size: 5 }.run(&HashMap::new()),
            Err(TreeError::Missing(_))
        ));
    }
}
