//! Inclusion-proof time on large logs: builds logs of 1 M and 10 M leaves
//! directly in an SQLite file (the stored hashes are computed in memory;
//! appending millions of entries through the server would take hours), then
//! times proofs through the store's own API and checks each one.
//!
//!   cargo bench -p gatehouse-store-sqlite --bench proofs [-- SIZES...]

use gatehouse_store::prelude::*;
use std::time::Instant;

use gatehouse_log::proof::{leaf_hash, verify_inclusion};
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_store_sqlite::SqliteStore;

fn build(dir: &std::path::Path, n: u64) -> Hash {
    let signer = gatehouse_store::conformance::test_signer();
    drop(SqliteStore::open(dir, signer).expect("create schema"));
    let conn = rusqlite::Connection::open(dir.join("gatehouse.db")).unwrap();
    conn.execute_batch("PRAGMA synchronous = OFF; BEGIN")
        .unwrap();
    let mut stored: Vec<Hash> = Vec::with_capacity((2 * n) as usize);
    {
        // The store's layout: each leaf's row holds the hashes its append
        // stored, concatenated in storage-index order.
        let mut insert = conn
            .prepare("INSERT INTO log_entries (idx, kind, ref_id, leaf, hashes) VALUES (?1, 'bench', '', ?2, ?3)")
            .unwrap();
        for i in 0..n {
            let op = Op::Append {
                n: i,
                leaf: leaf_hash(&i.to_le_bytes()),
            };
            let fetched = op
                .needs()
                .unwrap()
                .into_iter()
                .map(|k| (k, stored[k as usize]))
                .collect();
            let Output::Stored(new) = op.run(&fetched).unwrap() else {
                unreachable!()
            };
            let mut packed = Vec::with_capacity(64);
            for (k, h) in new {
                assert_eq!(k as usize, stored.len());
                packed.extend_from_slice(&h.0);
                stored.push(h);
            }
            insert
                .execute(rusqlite::params![
                    i as i64,
                    i.to_le_bytes().to_vec(),
                    packed
                ])
                .unwrap();
        }
    }
    conn.execute_batch("COMMIT").unwrap();
    let op = Op::Root { size: n };
    let fetched = op
        .needs()
        .unwrap()
        .into_iter()
        .map(|k| (k, stored[k as usize]))
        .collect();
    let Output::Root(root) = op.run(&fetched).unwrap() else {
        unreachable!()
    };
    root
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1_000_000, 10_000_000]
    } else {
        sizes
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let root = build(dir.path(), n);
        let built = started.elapsed();
        let store =
            SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
        let mut times = Vec::new();
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..2_000 {
            // xorshift: spread indexes over the whole tree, reproducibly.
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let index = state % n;
            let t = Instant::now();
            let op = Op::Inclusion { index, size: n };
            let hashes = rt
                .block_on(store.read_log_hashes(op.needs().unwrap()))
                .unwrap();
            let Output::Proof(proof) = op.run(&hashes).unwrap() else {
                unreachable!()
            };
            times.push(t.elapsed());
            verify_inclusion(&proof, n, root, index, leaf_hash(&index.to_le_bytes()))
                .expect("proof verifies");
        }
        times.sort();
        let pct = |p: usize| times[times.len() * p / 100].as_secs_f64() * 1e6;
        println!(
            "{n} leaves (built in {:.0} s): inclusion proof from the store p50 {:.0} µs, p99 {:.0} µs, max {:.0} µs over {} proofs",
            built.as_secs_f64(),
            pct(50),
            pct(99),
            times.last().unwrap().as_secs_f64() * 1e6,
            times.len()
        );
    }
}
