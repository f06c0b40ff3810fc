//! Reviews, deadlines and expiry.

use std::sync::Arc;

use gatehouse_core::{ReviewChoice, Status, Verdict};
use time::Duration;

use super::*;
use crate::prelude::*;
use crate::StoreError;

pub async fn review_resolves_only_pending(store: Arc<dyn Store>) {
    let pending = sample_decision(Verdict::PendingReview, "k1", None, "t1");
    store.create_decision(&pending, None).await.unwrap();
    let at = now();
    let reviewed = store
        .review_decision(&pending.id, &review(ReviewChoice::Approve, at))
        .await
        .unwrap();
    assert_eq!(reviewed.status, Status::Approved);
    assert_eq!(
        reviewed.review.as_ref().unwrap().comment.as_deref(),
        Some("looks fine")
    );
    assert_eq!(reviewed.resolved_at, Some(at));
    let again = store
        .review_decision(&pending.id, &review(ReviewChoice::Reject, at))
        .await;
    assert!(
        matches!(again, Err(StoreError::NotPending(ref s)) if s == "approved"),
        "{again:?}"
    );
    let stored = store.get_decision(&pending.id).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        Status::Approved,
        "a refused review must not change anything"
    );

    let allowed = sample_decision(Verdict::Allow, "k1", None, "t1");
    store.create_decision(&allowed, None).await.unwrap();
    assert!(matches!(
        store
            .review_decision(&allowed.id, &review(ReviewChoice::Approve, at))
            .await,
        Err(StoreError::NotPending(_))
    ));
    assert!(matches!(
        store
            .review_decision("dec_missing", &review(ReviewChoice::Approve, at))
            .await,
        Err(StoreError::NotFound)
    ));
}

pub async fn review_after_deadline_is_refused(store: Arc<dyn Store>) {
    let pending = sample_decision(Verdict::PendingReview, "k1", None, "t1");
    store.create_decision(&pending, None).await.unwrap();
    let late = pending.deadline.unwrap() + Duration::seconds(1);
    let result = store
        .review_decision(&pending.id, &review(ReviewChoice::Approve, late))
        .await;
    assert!(
        matches!(result, Err(StoreError::NotPending(ref s)) if s == "expired"),
        "{result:?}"
    );
    let stored = store.get_decision(&pending.id).await.unwrap().unwrap();
    assert_ne!(stored.status, Status::Approved);
}

pub async fn concurrent_reviews_apply_once(store: Arc<dyn Store>) {
    let pending = sample_decision(Verdict::PendingReview, "k1", None, "t1");
    store.create_decision(&pending, None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let id = pending.id.clone();
        let choice = if i % 2 == 0 {
            ReviewChoice::Approve
        } else {
            ReviewChoice::Reject
        };
        tasks.push(tokio::spawn(async move {
            store.review_decision(&id, &review(choice, now())).await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => ok += 1,
            Err(StoreError::NotPending(_)) => {}
            Err(e) => panic!("unexpected error {e}"),
        }
    }
    assert_eq!(ok, 1, "exactly one review may apply");
}

pub async fn expire_due_moves_only_due_pending(store: Arc<dyn Store>) {
    let due = sample_decision(Verdict::PendingReview, "k1", None, "t-exp");
    let later = sample_decision(Verdict::PendingReview, "k1", None, "t-exp");
    let allowed = sample_decision(Verdict::Allow, "k1", None, "t-exp");
    for d in [&due, &later, &allowed] {
        store.create_decision(d, None).await.unwrap();
    }
    // Move `later`'s deadline out of reach by expiring at `due`'s deadline
    // while `later` was created afterwards with a later deadline.
    let cutoff = due.deadline.unwrap();
    let expired = store.expire_due(cutoff).await.unwrap();
    assert!(expired.contains(&due.id));
    assert!(!expired.contains(&allowed.id));
    if later.deadline.unwrap() > cutoff {
        assert!(!expired.contains(&later.id));
    }
    let got = store.get_decision(&due.id).await.unwrap().unwrap();
    assert_eq!(got.status, Status::Expired);
    assert_eq!(got.resolved_at, Some(cutoff));
    assert!(
        store.expire_due(cutoff).await.unwrap().is_empty(),
        "expiry is applied once"
    );
    assert_eq!(
        store
            .get_decision(&allowed.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        Status::Allow
    );
}
