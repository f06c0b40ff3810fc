//! The log's right edge, kept in memory between appends.
//!
//! Appending a leaf and computing the root both read only the hashes of the
//! complete subtrees that make up the current tree (at most one per bit of
//! the size). A writer that holds those few hashes in memory appends and
//! checkpoints without reading the store at all; it only has to check, once
//! per transaction, that nobody else appended in the meantime (the store's
//! size still equals [`Frontier::size`]) and reload if someone did.

use std::collections::HashMap;

use crate::tree::{Op, Output, TreeError};
use crate::Hash;

#[derive(Debug, Clone, PartialEq)]
pub struct Frontier {
    size: u64,
    /// Exactly the stored hashes `Op::Root { size }` reads.
    hashes: HashMap<u64, Hash>,
}

impl Frontier {
    /// The empty log.
    pub fn empty() -> Self {
        Frontier {
            size: 0,
            hashes: HashMap::new(),
        }
    }

    /// The stored hash indexes [`Frontier::load`] needs for a log of `size`.
    pub fn needs(size: u64) -> Result<Vec<u64>, TreeError> {
        Op::Root { size }.needs()
    }

    /// Builds the frontier of a log of `size` leaves from its stored hashes
    /// (at least those [`Frontier::needs`] names).
    pub fn load(size: u64, fetched: &HashMap<u64, Hash>) -> Result<Self, TreeError> {
        let hashes = Self::needs(size)?
            .into_iter()
            .map(|i| {
                fetched
                    .get(&i)
                    .map(|h| (i, *h))
                    .ok_or(TreeError::Missing(i))
            })
            .collect::<Result<_, _>>()?;
        Ok(Frontier { size, hashes })
    }

    /// The number of leaves in the log.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; returns its index and the stored hashes to write.
    pub fn append(&mut self, leaf: Hash) -> Result<(u64, Vec<(u64, Hash)>), TreeError> {
        let index = self.size;
        let Output::Stored(stored) = (Op::Append { n: index, leaf }).run(&self.hashes)? else {
            return Err(TreeError::Tlog("append produced no hashes".into()));
        };
        let keep = Self::needs(index + 1)?;
        self.hashes.extend(stored.iter().copied());
        self.hashes.retain(|i, _| keep.contains(i));
        self.size = index + 1;
        Ok((index, stored))
    }

    /// The root hash of the whole log.
    pub fn root(&self) -> Result<Hash, TreeError> {
        match (Op::Root { size: self.size }).run(&self.hashes)? {
            Output::Root(root) => Ok(root),
            _ => Err(TreeError::Tlog("root computation failed".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proof::leaf_hash;

    fn leaf(i: u64) -> Hash {
        leaf_hash(format!("leaf {i}").as_bytes())
    }

    /// Appends through `Op` with every stored hash at hand, as the stores
    /// did before the frontier existed; the frontier must agree with it.
    fn reference(n: u64) -> HashMap<u64, Hash> {
        let mut stored = HashMap::new();
        for i in 0..n {
            let Output::Stored(new) = (Op::Append {
                n: i,
                leaf: leaf(i),
            })
            .run(&stored)
            .unwrap() else {
                panic!("no hashes")
            };
            stored.extend(new);
        }
        stored
    }

    #[test]
    fn appends_and_roots_match_the_full_tree() {
        let all = reference(300);
        let mut f = Frontier::empty();
        for i in 0..300u64 {
            let (index, stored) = f.append(leaf(i)).unwrap();
            assert_eq!(index, i);
            for (k, h) in stored {
                assert_eq!(all[&k], h, "stored hash {k} after leaf {i}");
            }
            let Output::Root(root) = (Op::Root { size: i + 1 }).run(&all).unwrap() else {
                panic!()
            };
            assert_eq!(f.root().unwrap(), root, "root of {} leaves", i + 1);
            assert!(f.hashes.len() <= 64);
        }
    }

    #[test]
    fn a_loaded_frontier_continues_the_log() {
        let all = reference(100);
        let mut loaded = Frontier::load(37, &all).unwrap();
        let mut built = Frontier::empty();
        for i in 0..37 {
            built.append(leaf(i)).unwrap();
        }
        assert_eq!(loaded, built);
        for i in 37..100 {
            assert_eq!(
                loaded.append(leaf(i)).unwrap(),
                built.append(leaf(i)).unwrap()
            );
        }
    }

    #[test]
    fn loading_without_the_hashes_fails() {
        let mut all = reference(6);
        let need = Frontier::needs(6).unwrap();
        all.remove(&need[0]);
        assert!(matches!(Frontier::load(6, &all), Err(TreeError::Missing(i)) if i == need[0]));
    }
}
