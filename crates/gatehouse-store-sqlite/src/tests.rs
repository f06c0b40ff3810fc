//! Tests of the SQLite backend's own mechanics (the shared behaviour is
//! the conformance suite in tests/conformance.rs).

use gatehouse_log::entry::LogEntry;
use gatehouse_store::prelude::*;
use gatehouse_store::StoreError;
use rusqlite::{params, Connection};
use time::OffsetDateTime;

use crate::rows::backend;
use crate::{log, SqliteStore, DB_FILE};

/// A migrated database in a new directory: the directory (keep it alive)
/// and the database file.
pub(crate) fn fresh_database() -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    drop(SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap());
    let path = dir.path().join(DB_FILE);
    (dir, path)
}

#[tokio::test]
async fn ping_fails_when_a_table_is_missing() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
    store.ping().await.expect("a fresh database is ready");
    Connection::open(dir.path().join(DB_FILE))
        .unwrap()
        .execute_batch("DROP TABLE outcomes")
        .unwrap();
    assert!(store.ping().await.is_err(), "a missing table is not ready");
}

/// A log written before migration 0007 keeps its stored hashes in
/// `log_hashes`: proofs over it, and appends after it, still work.
#[tokio::test]
async fn leaves_from_before_the_hashes_moved_into_their_rows_still_prove() {
    use gatehouse_log::tree::{Op, Output};
    use gatehouse_store::conformance::{sample_decision, test_signer};

    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), test_signer()).unwrap();
    for i in 0..5 {
        let d = sample_decision(gatehouse_core::Verdict::Allow, "k1", None, &format!("t{i}"));
        store.create_decision(&d, None).await.unwrap();
    }
    drop(store);
    // Move the first leaves' hashes into the old table, as a log written
    // before the migration has them.
    let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
    let mut moved = 0;
    for leaf in 0..3u64 {
        let packed: Vec<u8> = conn
            .query_row(
                "SELECT hashes FROM log_entries WHERE idx = ?1",
                [leaf as i64],
                |r| r.get(0),
            )
            .unwrap();
        let first = tlog_tiles::tlog::stored_hash_index(0, leaf);
        for (k, h) in packed.chunks(32).enumerate() {
            conn.execute(
                "INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)",
                params![(first + k as u64) as i64, h],
            )
            .unwrap();
            moved += 1;
        }
        conn.execute(
            "UPDATE log_entries SET hashes = NULL WHERE idx = ?1",
            [leaf as i64],
        )
        .unwrap();
    }
    assert!(moved >= 4, "leaves 0..3 store at least 4 hashes");
    drop(conn);

    let store = SqliteStore::open(dir.path(), test_signer()).unwrap();
    let d = sample_decision(gatehouse_core::Verdict::Allow, "k1", None, "after");
    store.create_decision(&d, None).await.unwrap();
    let size = store.log_size().await.unwrap();
    let root = {
        let op = Op::Root { size };
        let Output::Root(root) = op
            .run(&store.read_log_hashes(op.needs().unwrap()).await.unwrap())
            .unwrap()
        else {
            unreachable!()
        };
        root
    };
    let leaves = store.log_leaves(0, 100).await.unwrap();
    for (index, bytes) in leaves {
        let op = Op::Inclusion { index, size };
        let Output::Proof(proof) = op
            .run(&store.read_log_hashes(op.needs().unwrap()).await.unwrap())
            .unwrap()
        else {
            unreachable!()
        };
        gatehouse_log::proof::verify_inclusion(
            &proof,
            size,
            root,
            index,
            gatehouse_log::proof::leaf_hash(&bytes),
        )
        .unwrap_or_else(|e| panic!("leaf {index}: {e:?}"));
    }
}

/// A job without a savepoint that fails after writing takes its batch
/// down with it: its write must not be committed.
#[tokio::test]
async fn an_unguarded_job_failing_after_a_write_rolls_back_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
    let failed = store
        .writer
        .run_logged_unguarded(|t| {
            t.execute(
                "INSERT INTO policy_versions (version, files_json, first_used_at_ms) VALUES ('pv', '[]', 0)",
                [],
            )
            .map_err(backend)?;
            log::append(t, &LogEntry::expiry("dec_x", OffsetDateTime::now_utc()))?;
            Err::<(), _>(StoreError::Backend("refused after writing".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        store.log_size().await.unwrap(),
        0,
        "the entry was rolled back"
    );
    assert!(store.get_policy_version("pv").await.unwrap().is_none());
    // A refusal before any write leaves the batch alone.
    let (refused, _) = tokio::join!(
        store
            .writer
            .run_logged_unguarded(|_| Err::<(), _>(StoreError::Duplicate)),
        store
            .writer
            .run_logged(|t| log::append(t, &LogEntry::expiry("dec_y", OffsetDateTime::now_utc())))
    );
    assert!(matches!(refused, Err(StoreError::Duplicate)));
    assert_eq!(store.log_size().await.unwrap(), 1);
}
