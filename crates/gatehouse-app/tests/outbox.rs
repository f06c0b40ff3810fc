//! The outbox through the application alone, with a channel that records
//! what it is handed: every committed event is owed and delivered in
//! order per decision, a failure is retried after a backoff, a delivery
//! that keeps failing is dead-lettered, and a refused request owes nothing.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_app::outbox::{Channel, Outbox, OutboxConfig, OutboxEvent, Owed, Sent};
use gatehouse_app::{access, App, AppConfig, Caller};
use gatehouse_core::{ActionRequest, ReviewChoice, Risk, Role};
use gatehouse_policy::{starter_files, Engine, EngineOptions};
use gatehouse_store::outbox::{Delivery, DeliveryQuery, DeliveryStatus};
use gatehouse_store::Store;
use gatehouse_store_sqlite::SqliteStore;
use gatehouse_token::TokenSigner;

/// Records each attempt; fails the attempts `fail` says to.
struct Recording {
    name: &'static str,
    sent: Mutex<Vec<(String, String, u32)>>,
    fail: fn(&Delivery) -> bool,
}

#[async_trait]
impl Channel for Recording {
    fn name(&self) -> &'static str {
        self.name
    }
    async fn wants(&self, _app: &App, _event_type: &str) -> bool {
        true
    }
    async fn owed(&self, _app: &App, ev: &OutboxEvent<'_>) -> Vec<Owed> {
        vec![Owed {
            target: "t".into(),
            payload: ev.event_type.to_string(),
        }]
    }
    async fn send(&self, _app: &App, d: &Delivery) -> Sent {
        self.sent.lock().unwrap().push((
            d.new.decision_id.clone(),
            d.new.payload.clone(),
            d.attempts,
        ));
        if (self.fail)(d) {
            Sent::Failed {
                code: Some(500),
                error: "answered 500".into(),
                permanent: false,
            }
        } else {
            Sent::Delivered { code: Some(204) }
        }
    }
}

fn request(risk: Risk) -> ActionRequest {
    serde_json::from_value(serde_json::json!({
        "agent": "GitHub Actions", "action": "deploy_production",
        "subject": "Deploy main", "risk": risk, "payload": {"sha": "abc123"}
    }))
    .unwrap()
}

async fn caller(store: &dyn Store, role: Role, name: &str) -> Caller {
    let new = access::generate_key(role, name, time::OffsetDateTime::now_utc());
    store.create_key(&new.key).await.unwrap();
    Caller::key(&new.key.id, name, role)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_events_are_delivered_in_order_retried_and_dead_lettered() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn Store> = Arc::new(
        SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap(),
    );
    let options = EngineOptions::default();
    let engine = Engine::compile(starter_files(), options).unwrap();
    let tokens = Arc::new(TokenSigner::generate().unwrap().1);
    let config = AppConfig {
        rate_limit_per_second: 0,
        ..AppConfig::default()
    };
    let app = App::new(store.clone(), engine, options, config, tokens)
        .await
        .unwrap();
    let agent = caller(store.as_ref(), Role::Agent, "agent").await;
    let reviewer = caller(store.as_ref(), Role::Reviewer, "rita").await;

    // "flaky" fails every first attempt; "down" fails always.
    let flaky = Arc::new(Recording {
        name: "flaky",
        sent: Mutex::default(),
        fail: |d| d.attempts == 1,
    });
    let down = Arc::new(Recording {
        name: "down",
        sent: Mutex::default(),
        fail: |_| true,
    });
    let _outbox = app.spawn_outbox(Outbox::new(
        vec![flaky.clone(), down.clone()],
        OutboxConfig {
            max_attempts: 3,
            backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(200),
            poll: Duration::from_millis(50),
            ..OutboxConfig::default()
        },
    ));

    let pending = app
        .decide(&agent, request(Risk::High), Some("k1".into()))
        .await
        .unwrap();
    let id = pending.decision.id.clone();
    // The same key with another body is refused before anything commits.
    assert!(app
        .decide(&agent, request(Risk::Low), Some("k1".into()))
        .await
        .is_err());
    app.review(&reviewer, &id, ReviewChoice::Approve, None, None)
        .await
        .unwrap();
    let allowed = app
        .decide(&agent, request(Risk::Low), None)
        .await
        .unwrap()
        .decision
        .id;

    let delivered = |rec: &Recording, decision: &str| -> Vec<String> {
        rec.sent
            .lock()
            .unwrap()
            .iter()
            .filter(|(d, _, attempt)| d == decision && *attempt == 2)
            .map(|(_, event, _)| event.clone())
            .collect()
    };
    let mut waited = 0;
    while delivered(&flaky, &id).len() < 4 || delivered(&flaky, &allowed).is_empty() {
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(
            waited < 200,
            "not delivered: {:?}",
            flaky.sent.lock().unwrap()
        );
    }
    assert_eq!(
        delivered(&flaky, &id),
        [
            "decision.created",
            "decision.pending_review",
            "review.recorded",
            "decision.resolved"
        ]
    );
    assert_eq!(delivered(&flaky, &allowed), ["decision.created"]);
    // Nothing for the refused request: two decisions, five events.
    let decisions: std::collections::BTreeSet<String> = flaky
        .sent
        .lock()
        .unwrap()
        .iter()
        .map(|(d, _, _)| d.clone())
        .collect();
    assert_eq!(decisions.len(), 2);

    // The channel that is down: three attempts each, then dead letters;
    // a decision's later events wait while an earlier one is pending.
    let mut waited = 0;
    loop {
        let dead = store
            .list_deliveries(&DeliveryQuery {
                status: Some(DeliveryStatus::Dead),
                limit: 50,
                ..Default::default()
            })
            .await
            .unwrap();
        if dead.len() == 5 {
            assert!(dead
                .iter()
                .all(|d| d.new.channel == "down" && d.attempts == 3));
            let attempts = store.delivery_attempts(&dead[0].new.id).await.unwrap();
            assert_eq!(attempts.len(), 3);
            assert!(attempts.iter().all(|a| a.status_code == Some(500)));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        waited += 1;
        assert!(waited < 300, "not dead-lettered: {dead:?}");
    }
    let sent = down.sent.lock().unwrap().clone();
    let first_resolved = sent
        .iter()
        .position(|(d, e, _)| d == &id && e == "decision.resolved")
        .unwrap();
    let last_created = sent
        .iter()
        .rposition(|(d, e, _)| d == &id && e == "decision.created")
        .unwrap();
    assert!(last_created < first_resolved, "out of order: {sent:?}");
}
