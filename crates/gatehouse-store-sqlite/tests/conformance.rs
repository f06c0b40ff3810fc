use gatehouse_store::prelude::*;
use std::sync::Arc;

use gatehouse_store::{conformance_tests, Store};
use gatehouse_store_sqlite::SqliteStore;

async fn make() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
    (Arc::new(store), dir)
}

conformance_tests!(make);

#[tokio::test]
async fn decisions_survive_reopening() {
    use gatehouse_core::Verdict;
    let dir = tempfile::tempdir().unwrap();
    let d = gatehouse_store::conformance::sample_decision(Verdict::PendingReview, "k", None, "t");
    {
        let store =
            SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
        store.create_decision(&d, None).await.unwrap();
    }
    let reopened =
        SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
    let got = reopened.get_decision(&d.id).await.unwrap().unwrap();
    assert_eq!(got.log_index, Some(0));
    assert_eq!(
        got,
        gatehouse_core::Decision {
            log_index: Some(0),
            ..d
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_on_one_directory_share_one_log() {
    let dir = tempfile::tempdir().unwrap();
    let signer = gatehouse_store::conformance::test_signer();
    let a = SqliteStore::open(dir.path(), signer.clone()).unwrap();
    let b = SqliteStore::open(dir.path(), signer).unwrap();
    gatehouse_store::conformance::two_writers_share_one_log(Arc::new(a), Arc::new(b)).await;
}
