use std::sync::Arc;

use gatehouse_store::{conformance_tests, Store};
use gatehouse_store_sqlite::SqliteStore;

async fn make() -> (Arc<dyn Store>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path()).unwrap();
    (Arc::new(store), dir)
}

conformance_tests!(make);

#[tokio::test]
async fn decisions_survive_reopening() {
    use gatehouse_core::Verdict;
    let dir = tempfile::tempdir().unwrap();
    let d = gatehouse_store::conformance::sample_decision(Verdict::PendingReview, "k", None, "t");
    {
        let store = SqliteStore::open(dir.path()).unwrap();
        store.create_decision(&d).await.unwrap();
    }
    let reopened = SqliteStore::open(dir.path()).unwrap();
    assert_eq!(reopened.get_decision(&d.id).await.unwrap(), Some(d));
}
