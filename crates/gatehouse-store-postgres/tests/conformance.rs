use gatehouse_store::prelude::*;
use std::sync::Arc;

use gatehouse_store::{conformance_tests, Store};
use gatehouse_store_postgres::testing::TestSchema;
use gatehouse_store_postgres::PostgresStore;

/// The store and its schema, which is dropped when the test ends.
async fn make() -> (Arc<dyn Store>, TestSchema) {
    let schema = TestSchema::create().await;
    let store = PostgresStore::connect_with(
        schema.options(),
        gatehouse_store::conformance::test_signer(),
    )
    .await
    .expect("connect");
    (Arc::new(store), schema)
}

conformance_tests!(make);

#[tokio::test]
async fn two_replicas_share_one_database() {
    use gatehouse_core::{ReviewChoice, Verdict};
    let schema = TestSchema::create().await;
    let signer = gatehouse_store::conformance::test_signer();
    let a = PostgresStore::connect_with(schema.options(), signer.clone())
        .await
        .unwrap();
    let b = PostgresStore::connect_with(schema.options(), signer)
        .await
        .unwrap();
    let d =
        gatehouse_store::conformance::sample_decision(Verdict::PendingReview, "k", Some("i"), "t");
    a.create_decision(&d, None).await.unwrap();
    // The second replica sees the first's decision and its idempotency key.
    assert_eq!(b.get_decision(&d.id).await.unwrap().unwrap().id, d.id);
    let retry = gatehouse_store::conformance::sample_decision(Verdict::Allow, "k", Some("i"), "t");
    assert!(matches!(
        b.create_decision(&retry, None).await.unwrap(),
        gatehouse_store::CreateOutcome::Existing(_)
    ));
    let review = gatehouse_core::Review {
        decision: ReviewChoice::Approve,
        reviewer_key_id: "r".into(),
        reviewer_name: None,
        comment: None,
        reviewed_at: gatehouse_core::decision::truncate_to_millis(time::OffsetDateTime::now_utc()),
        reviewer_user: None,
        groups: Vec::new(),
        action_hash: None,
        amended_payload: None,
    };
    b.review_decision(&d.id, &review).await.unwrap();
    assert!(a.review_decision(&d.id, &review).await.is_err());
    // Both replicas appended to one gap-free log: decision, review.
    assert_eq!(a.log_size().await.unwrap(), 2);
    let note = b.latest_checkpoint().await.unwrap().unwrap();
    let cp = gatehouse_log::checkpoint::verify(&note, a.log_verifier_key()).unwrap();
    assert_eq!(cp.size, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_one_log() {
    let schema = TestSchema::create().await;
    let signer = gatehouse_store::conformance::test_signer();
    let a = PostgresStore::connect_with(schema.options(), signer.clone())
        .await
        .unwrap();
    let b = PostgresStore::connect_with(schema.options(), signer)
        .await
        .unwrap();
    gatehouse_store::conformance::two_writers_share_one_log(Arc::new(a), Arc::new(b)).await;
}

/// Readiness means the schema is usable: a missing table fails the ping.
#[tokio::test]
async fn ping_fails_when_a_table_is_missing() {
    let schema = TestSchema::create().await;
    let store = PostgresStore::connect_with(
        schema.options(),
        gatehouse_store::conformance::test_signer(),
    )
    .await
    .unwrap();
    store.ping().await.expect("a fresh schema is ready");
    let admin = sqlx::PgPool::connect_with(schema.options()).await.unwrap();
    sqlx::query("DROP TABLE outcomes")
        .execute(&admin)
        .await
        .unwrap();
    assert!(store.ping().await.is_err(), "a missing table is not ready");
}
