//! The outbox: the fan-out cursor, claims, ordering, retries, webhooks.

use std::sync::Arc;

use crate::outbox::WebhookRecord;
use crate::outbox::{DeliveryAttempt, DeliveryNext, DeliveryQuery, DeliveryStatus, NewDelivery};
use crate::{Store, StoreError};

fn delivery(id: &str, position: i64, decision: &str, target: &str) -> NewDelivery {
    NewDelivery {
        id: id.to_string(),
        log_index: (position / 16) as u64,
        position,
        decision_id: decision.to_string(),
        event_type: "decision.pending_review".to_string(),
        channel: "webhook".to_string(),
        target: target.to_string(),
        payload: format!("{{\"n\":{position}}}"),
        created_at_ms: 1_000,
    }
}

fn attempt(id: &str, n: u32, at: i64, code: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt {
        delivery_id: id.to_string(),
        attempt: n,
        at_ms: at,
        duration_ms: 3,
        status_code: code,
        error: code.filter(|c| *c >= 300).map(|c| format!("answered {c}")),
    }
}

/// The cursor moves only from where it is, together with the rows; a
/// second fan-out of the same entries stores nothing twice.
pub async fn outbox_cursor_moves_with_its_deliveries(store: Arc<dyn Store>) {
    let start = store.outbox_cursor().await.unwrap();
    let first = vec![
        delivery("d1", 16 * 3, "dec-a", "w1"),
        delivery("d2", 16 * 3 + 1, "dec-a", "w1"),
    ];
    assert!(store
        .enqueue_deliveries(start, start + 4, first)
        .await
        .unwrap());
    assert_eq!(store.outbox_cursor().await.unwrap(), start + 4);
    // A replica that read the same entries lost the race: nothing changes.
    let late = vec![delivery("d9", 16 * 3 + 2, "dec-a", "w1")];
    assert!(!store
        .enqueue_deliveries(start, start + 4, late)
        .await
        .unwrap());
    assert!(
        store.get_delivery("d9").await.unwrap().is_none(),
        "a lost fan-out stored rows"
    );
    assert_eq!(store.outbox_cursor().await.unwrap(), start + 4);
    // The same event for the same target under a new id is not stored again.
    let again = vec![delivery("d1-again", 16 * 3, "dec-a", "w1")];
    assert!(store
        .enqueue_deliveries(start + 4, start + 5, again)
        .await
        .unwrap());
    assert!(store.get_delivery("d1-again").await.unwrap().is_none());
    let d1 = store.get_delivery("d1").await.unwrap().expect("stored");
    assert_eq!(d1.status, DeliveryStatus::Pending);
    assert_eq!(d1.attempts, 0);
    assert_eq!(d1.new.payload, "{\"n\":48}");
}

/// A claim takes due deliveries once until its lease ends, in order per
/// target and decision; results, retries and dead letters are recorded.
pub async fn deliveries_are_claimed_once_in_order(store: Arc<dyn Store>) {
    let at = store.outbox_cursor().await.unwrap();
    let rows = vec![
        delivery("a1", 160, "dec-1", "w1"),
        delivery("a2", 161, "dec-1", "w1"),
        delivery("b1", 162, "dec-2", "w1"),
        delivery("c1", 160, "dec-1", "w2"),
    ];
    assert!(store.enqueue_deliveries(at, at + 11, rows).await.unwrap());
    let now = 10_000;
    let claimed = store.claim_deliveries(now, now + 5_000, 10).await.unwrap();
    let mut ids: Vec<_> = claimed.iter().map(|d| d.new.id.as_str()).collect();
    ids.sort();
    // a2 waits for a1: same decision, same target.
    assert_eq!(ids, ["a1", "b1", "c1"]);
    assert!(claimed.iter().all(|d| d.attempts == 1));
    // Claimed rows are not claimed again while their lease runs.
    assert!(store
        .claim_deliveries(now + 1, now + 5_000, 10)
        .await
        .unwrap()
        .is_empty());

    store
        .finish_deliveries(&[(attempt("a1", 1, now, Some(204)), DeliveryNext::Delivered)])
        .await
        .unwrap();
    store
        .finish_deliveries(&[(
            attempt("b1", 1, now, Some(500)),
            DeliveryNext::RetryAt(now + 60_000),
        )])
        .await
        .unwrap();
    store
        .finish_deliveries(&[(attempt("c1", 1, now, None), DeliveryNext::Dead)])
        .await
        .unwrap();
    let next = store
        .claim_deliveries(now + 2, now + 5_000, 10)
        .await
        .unwrap();
    assert_eq!(
        next.iter().map(|d| d.new.id.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );
    // A crashed attempt's lease runs out and the delivery is claimed again.
    let again = store
        .claim_deliveries(now + 6_000, now + 9_000, 10)
        .await
        .unwrap();
    assert_eq!(
        again
            .iter()
            .map(|d| (d.new.id.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        [("a2", 2)]
    );
    store
        .finish_deliveries(&[(
            attempt("a2", 2, now + 6_000, Some(200)),
            DeliveryNext::Delivered,
        )])
        .await
        .unwrap();
    // The retry is due at its time.
    let due = store
        .claim_deliveries(now + 60_000, now + 65_000, 10)
        .await
        .unwrap();
    assert_eq!(
        due.iter()
            .map(|d| (d.new.id.as_str(), d.attempts))
            .collect::<Vec<_>>(),
        [("b1", 2)]
    );

    let a1 = store.get_delivery("a1").await.unwrap().unwrap();
    assert_eq!(
        (a1.status, a1.last_status_code, a1.delivered_at_ms),
        (DeliveryStatus::Delivered, Some(204), Some(now))
    );
    let b1 = store.get_delivery("b1").await.unwrap().unwrap();
    assert_eq!(b1.last_error.as_deref(), Some("answered 500"));
    let attempts = store.delivery_attempts("b1").await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status_code, Some(500));

    let dead = store
        .list_deliveries(&DeliveryQuery {
            status: Some(DeliveryStatus::Dead),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        dead.iter().map(|d| d.new.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );
    let about = store
        .list_deliveries(&DeliveryQuery {
            decision_id: Some("dec-1".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        about.iter().map(|d| d.new.id.as_str()).collect::<Vec<_>>(),
        ["c1", "a2", "a1"]
    );
    let page = store
        .list_deliveries(&DeliveryQuery {
            decision_id: Some("dec-1".into()),
            before: Some("c1".into()),
            limit: 1,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        page.iter().map(|d| d.new.id.as_str()).collect::<Vec<_>>(),
        ["a2"]
    );

    // A manual retry revives a dead letter with a fresh count; a delivered
    // one stays delivered.
    assert!(store.retry_delivery("c1", now + 70_000).await.unwrap());
    assert!(!store.retry_delivery("a1", now + 70_000).await.unwrap());
    assert!(!store.retry_delivery("nope", now + 70_000).await.unwrap());
    let revived = store
        .claim_deliveries(now + 70_000, now + 75_000, 10)
        .await
        .unwrap();
    assert!(revived
        .iter()
        .any(|d| d.new.id == "c1" && d.attempts == 1 && d.age_from_ms == now + 70_000));
}

/// Two claimers at once never take the same delivery.
pub async fn concurrent_claims_take_each_delivery_once(store: Arc<dyn Store>) {
    let at = store.outbox_cursor().await.unwrap();
    let rows: Vec<_> = (0..40)
        .map(|i| delivery(&format!("x{i:02}"), 1_600 + i, &format!("dec-{i}"), "w"))
        .collect();
    assert!(store.enqueue_deliveries(at, at + 1, rows).await.unwrap());
    let claims = (0..4).map(|_| {
        let s = store.clone();
        tokio::spawn(async move { s.claim_deliveries(50_000, 60_000, 15).await.unwrap() })
    });
    let mut ids = Vec::new();
    for c in claims {
        ids.extend(c.await.unwrap().into_iter().map(|d| d.new.id));
    }
    ids.sort();
    let before = ids.len();
    ids.dedup();
    assert_eq!(before, ids.len(), "a delivery was claimed twice");
    assert_eq!(ids.len(), 40);
}

/// Notification refs are replaced; webhooks are stored, listed, deleted;
/// outside identities are linked, moved and unlinked.
pub async fn webhooks_and_refs_are_kept(store: Arc<dyn Store>) {
    for name in ["ana", "bo"] {
        let mut u = crate::conformance::sample_user(name, &["finance"]);
        u.email = Some(format!("{name}@example.com"));
        store.create_user(&u).await.unwrap();
    }
    assert_eq!(store.user_by_identity("slack", "U1").await.unwrap(), None);
    store
        .set_identity("slack", "U1", Some("ana"))
        .await
        .unwrap();
    assert_eq!(
        store
            .user_by_identity("slack", "U1")
            .await
            .unwrap()
            .as_deref(),
        Some("ana")
    );
    store.set_identity("slack", "U1", Some("bo")).await.unwrap();
    assert_eq!(
        store
            .user_by_identity("slack", "U1")
            .await
            .unwrap()
            .as_deref(),
        Some("bo")
    );
    assert_eq!(store.user_by_identity("oidc", "U1").await.unwrap(), None);
    store.set_identity("slack", "U1", None).await.unwrap();
    assert_eq!(store.user_by_identity("slack", "U1").await.unwrap(), None);

    // Sign-in links work once, and not after they expire.
    store
        .create_sign_in_link("h1", "ana", "dec-1", 1_000)
        .await
        .unwrap();
    store
        .create_sign_in_link("h2", "bo", "dec-2", 1_000)
        .await
        .unwrap();
    assert_eq!(
        store.use_sign_in_link("h1", 999).await.unwrap(),
        Some(("ana".to_string(), "dec-1".to_string()))
    );
    assert_eq!(store.use_sign_in_link("h1", 999).await.unwrap(), None);
    assert_eq!(store.use_sign_in_link("h2", 1_000).await.unwrap(), None);
    assert_eq!(store.use_sign_in_link("nope", 1).await.unwrap(), None);

    assert_eq!(
        store.notification_ref("dec", "slack:C1").await.unwrap(),
        None
    );
    store
        .put_notification_ref("dec", "slack:C1", "1.1")
        .await
        .unwrap();
    store
        .put_notification_ref("dec", "slack:C1", "1.2")
        .await
        .unwrap();
    assert_eq!(
        store
            .notification_ref("dec", "slack:C1")
            .await
            .unwrap()
            .as_deref(),
        Some("1.2")
    );

    let w = WebhookRecord {
        id: "wh_1".into(),
        url: "https://hooks.example.com/x".into(),
        secret: "whsec_c2VjcmV0".into(),
        events: vec!["decision.resolved".into()],
        created_by: "admin".into(),
        created_at_ms: 5,
    };
    store.create_webhook(&w).await.unwrap();
    assert!(matches!(
        store.create_webhook(&w).await,
        Err(StoreError::Duplicate)
    ));
    assert_eq!(store.list_webhooks().await.unwrap(), vec![w]);
    assert!(store.delete_webhook("wh_1").await.unwrap());
    assert!(!store.delete_webhook("wh_1").await.unwrap());
    assert!(store.list_webhooks().await.unwrap().is_empty());
}
