//! Domain events and waits, through the application alone: on SQLite, and
//! across two replicas sharing PostgreSQL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use gatehouse_app::events::Subscription;
use gatehouse_app::{access, App, AppConfig, Caller, DomainEvent, Resolution};
use gatehouse_core::{ActionRequest, ReviewChoice, Risk, Role, Verdict};
use gatehouse_policy::{starter_files, Engine, EngineOptions};
use gatehouse_store::Store;
use gatehouse_store_postgres::testing::TestSchema;
use gatehouse_store_postgres::PostgresStore;
use gatehouse_store_sqlite::SqliteStore;
use gatehouse_token::TokenSigner;

async fn app_on(store: Arc<dyn Store>, poll: Duration) -> Arc<App> {
    let options = EngineOptions::default();
    let engine = Engine::compile(starter_files(), options).unwrap();
    let tokens = Arc::new(TokenSigner::generate().unwrap().1);
    let config = AppConfig {
        rate_limit_per_second: 0,
        event_poll_interval: poll,
        ..AppConfig::default()
    };
    App::new(store, engine, options, config, tokens)
        .await
        .unwrap()
}

async fn caller(store: &dyn Store, role: Role, name: &str) -> Caller {
    let new = access::generate_key(role, name, time::OffsetDateTime::now_utc());
    store.create_key(&new.key).await.unwrap();
    Caller::key(&new.key.id, name, role)
}

fn request(risk: Risk) -> ActionRequest {
    serde_json::from_value(serde_json::json!({
        "agent": "GitHub Actions", "action": "deploy_production",
        "subject": "Deploy main", "risk": risk, "payload": {"sha": "abc123"}, "task_id": "run-1"
    }))
    .unwrap()
}

async fn next(sub: &mut Subscription) -> (u64, DomainEvent) {
    let p = tokio::time::timeout(Duration::from_secs(10), sub.next())
        .await
        .expect("an event within 10 s")
        .expect("the subscription is open");
    (p.log_index, p.event.clone())
}

#[tokio::test]
async fn every_state_change_is_published_in_log_order() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap(),
    );
    // A long poll interval: local commits must wake the reader by themselves.
    let app = app_on(store.clone(), Duration::from_secs(3600)).await;
    let agent = caller(store.as_ref(), Role::Agent, "agent").await;
    let reviewer = caller(store.as_ref(), Role::Reviewer, "rita").await;

    let mut all = app.events().subscribe().await.unwrap();
    let pending = app.decide(&agent, request(Risk::High), None).await.unwrap();
    let id = pending.decision.id.clone();
    let created = next(&mut all).await;
    assert_eq!(
        created.1,
        DomainEvent::DecisionCreated {
            decision_id: id.clone(),
            verdict: Verdict::PendingReview,
            created_by: agent.key_id.clone(),
        }
    );
    assert_eq!(Some(created.0), pending.decision.log_index);
    assert_eq!(
        next(&mut all).await.1,
        DomainEvent::ReviewRequested {
            decision_id: id.clone()
        }
    );

    let mut watched = app.events().watch(&id).await.unwrap();
    let started = Instant::now();
    app.review(&reviewer, &id, ReviewChoice::Approve, None, None)
        .await
        .unwrap();
    for sub in [&mut all, &mut watched] {
        let (review_index, recorded) = next(sub).await;
        assert_eq!(
            recorded,
            DomainEvent::ReviewRecorded {
                decision_id: id.clone(),
                reviewer: reviewer.key_id.clone(),
                decision: ReviewChoice::Approve,
            }
        );
        let (index, resolved) = next(sub).await;
        assert_eq!(index, review_index);
        assert_eq!(
            resolved,
            DomainEvent::DecisionResolved {
                decision_id: id.clone(),
                resolution: Resolution::Approved,
            }
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "woken by the commit, not a poll"
    );

    // A decision the watcher does not follow reaches only the full stream.
    let other = app.decide(&agent, request(Risk::Low), None).await.unwrap();
    assert!(
        matches!(next(&mut all).await.1, DomainEvent::DecisionCreated { decision_id, verdict: Verdict::Allow, .. } if decision_id == other.decision.id)
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), watched.next())
            .await
            .is_err(),
        "the watcher only sees its decision"
    );
}

#[tokio::test]
async fn a_wait_answers_at_once_when_the_process_stops() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap(),
    );
    let app = app_on(store.clone(), Duration::from_secs(1)).await;
    let agent = caller(store.as_ref(), Role::Agent, "agent").await;
    let pending = app.decide(&agent, request(Risk::High), None).await.unwrap();
    let waiting = tokio::spawn({
        let (app, agent, id) = (app.clone(), agent.clone(), pending.decision.id.clone());
        async move { app.wait(&agent, &id, Duration::from_secs(60)).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    app.stop_waiting();
    let d = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the wait ends at once")
        .unwrap()
        .unwrap();
    assert_eq!(d.status, gatehouse_core::Status::PendingReview);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Two replicas share one PostgreSQL database: a review on one wakes a
/// subscriber, and a waiter, on the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_reach_subscribers_on_another_replica() {
    let schema = TestSchema::create().await;
    let signer = gatehouse_store::conformance::test_signer();
    let store_a: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_with(schema.options(), signer.clone())
            .await
            .unwrap(),
    );
    let store_b: Arc<dyn Store> = Arc::new(
        PostgresStore::connect_with(schema.options(), signer)
            .await
            .unwrap(),
    );
    let poll = Duration::from_millis(200);
    let a = app_on(store_a.clone(), poll).await;
    let b = app_on(store_b, poll).await;
    let agent = caller(store_a.as_ref(), Role::Agent, "agent").await;
    let reviewer = caller(store_a.as_ref(), Role::Reviewer, "rita").await;

    let pending = a.decide(&agent, request(Risk::High), None).await.unwrap();
    let id = pending.decision.id.clone();
    let mut on_a = a.events().watch(&id).await.unwrap();
    let waiting = tokio::spawn({
        let (a, agent, id) = (a.clone(), agent.clone(), id.clone());
        async move { a.wait(&agent, &id, Duration::from_secs(30)).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    b.review(
        &reviewer,
        &id,
        ReviewChoice::Reject,
        Some("not today".into()),
        None,
    )
    .await
    .unwrap();
    assert!(matches!(
        next(&mut on_a).await.1,
        DomainEvent::ReviewRecorded { .. }
    ));
    assert_eq!(
        next(&mut on_a).await.1,
        DomainEvent::DecisionResolved {
            decision_id: id.clone(),
            resolution: Resolution::Rejected,
        }
    );
    let waited = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("the waiter on the other replica wakes")
        .unwrap()
        .unwrap();
    assert_eq!(waited.status, gatehouse_core::Status::Rejected);
}
