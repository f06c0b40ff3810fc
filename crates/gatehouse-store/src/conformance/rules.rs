//! Review rules: quorum, eligibility and escalation, judged inside the
//! store's transaction.

use std::sync::Arc;

use gatehouse_core::decision::rfc3339;
use gatehouse_core::review_rule::{Refusal, Requirement, ReviewRule};
use gatehouse_core::{Decision, Review, ReviewChoice, Status, Verdict};
use gatehouse_log::entry::LogEntry;
use gatehouse_log::state::derive;
use time::Duration;

use super::*;
use crate::prelude::*;
use crate::{StoreError, StoreResult};

fn ruled(requirements: Vec<Requirement>) -> Decision {
    let mut d = sample_decision(Verdict::PendingReview, "agent-key", None, "t-rules");
    d.review_rule = Some(ReviewRule {
        requester: "agent".into(),
        requirements,
    });
    d.seal()
}

fn requirement(groups: &[&str], quorum: u32) -> Requirement {
    Requirement {
        groups: groups.iter().map(|g| g.to_string()).collect(),
        quorum,
        ..Requirement::anyone()
    }
}

fn by(d: &Decision, who: &str, groups: &[&str], choice: ReviewChoice) -> Review {
    Review {
        reviewer_key_id: format!("key-{who}"),
        reviewer_name: Some(who.into()),
        reviewer_user: Some(who.into()),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        action_hash: Some(d.action_hash.clone()),
        ..review(choice, now())
    }
}

pub async fn review_rules_need_every_requirement(store: Arc<dyn Store>) {
    // Two of finance and one of legal.
    let d = ruled(vec![
        requirement(&["finance"], 2),
        requirement(&["legal"], 1),
    ]);
    store.create_decision(&d, None).await.unwrap();
    let refused = |r: StoreResult<Decision>| match r {
        Err(StoreError::ReviewRefused(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    };
    assert!(matches!(
        refused(
            store
                .review_decision(&d.id, &by(&d, "eve", &["marketing"], ReviewChoice::Approve))
                .await
        ),
        Refusal::NotEligible(_)
    ));
    assert_eq!(
        refused(
            store
                .review_decision(&d.id, &by(&d, "agent", &["finance"], ReviewChoice::Approve))
                .await
        ),
        Refusal::SelfReview
    );
    let after = store
        .review_decision(&d.id, &by(&d, "ana", &["finance"], ReviewChoice::Approve))
        .await
        .unwrap();
    assert_eq!(
        (after.status, after.reviews.len(), after.review.is_none()),
        (Status::PendingReview, 1, true)
    );
    // The same person again, with another key: counted once, refused.
    let mut again = by(&d, "ana", &["finance"], ReviewChoice::Approve);
    again.reviewer_key_id = "key-ana-laptop".into();
    assert!(matches!(
        refused(store.review_decision(&d.id, &again).await),
        Refusal::AlreadyReviewed(_)
    ));
    let after = store
        .review_decision(&d.id, &by(&d, "bo", &["finance"], ReviewChoice::Approve))
        .await
        .unwrap();
    assert_eq!(
        after.status,
        Status::PendingReview,
        "legal has not approved yet"
    );
    let last = by(&d, "lee", &["legal"], ReviewChoice::Approve);
    let after = store.review_decision(&d.id, &last).await.unwrap();
    assert_eq!(after.status, Status::Approved);
    assert_eq!(after.review.as_ref(), Some(&last));
    assert_eq!(after.resolved_at, Some(last.reviewed_at));
    assert_eq!(after.reviews.len(), 3);

    // The log alone says the same: three reviews, the last resolving.
    let (state, problems) = derive(&d.id, &store.log_entries_for(&d.id).await.unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    let state = state.unwrap();
    assert_eq!((state.status, state.reviews.len()), (Status::Approved, 3));
    assert_eq!(state.resolved.unwrap().index, state.reviews[2].index);

    // One eligible reject rejects at once.
    let d2 = ruled(vec![requirement(&["finance"], 2)]);
    store.create_decision(&d2, None).await.unwrap();
    store
        .review_decision(&d2.id, &by(&d2, "ana", &["finance"], ReviewChoice::Approve))
        .await
        .unwrap();
    let rejected = store
        .review_decision(&d2.id, &by(&d2, "bo", &["finance"], ReviewChoice::Reject))
        .await
        .unwrap();
    assert_eq!(rejected.status, Status::Rejected);
}

pub async fn due_escalations_are_logged_once(store: Arc<dyn Store>) {
    let mut r = requirement(&["finance"], 1);
    r.escalate_to = Some("finance-leads".into());
    r.escalate_at = Some(rfc3339(now() - Duration::seconds(1)));
    let d = ruled(vec![r]);
    store.create_decision(&d, None).await.unwrap();
    let escalated = store.escalate_due(now()).await.unwrap();
    assert!(
        escalated.contains(&(d.id.clone(), "finance-leads".to_string())),
        "{escalated:?}"
    );
    let again = store.escalate_due(now()).await.unwrap();
    assert!(
        !again.iter().any(|(id, _)| *id == d.id),
        "escalated twice: {again:?}"
    );
    let kinds: Vec<String> = store
        .log_entries_for(&d.id)
        .await
        .unwrap()
        .iter()
        .map(|(_, b)| LogEntry::parse(b).unwrap().event.kind().to_string())
        .collect();
    assert_eq!(kinds, ["decision", "escalation"]);
    // The escalation group may now review, and its approval resolves.
    let lead = by(&d, "lu", &["finance-leads"], ReviewChoice::Approve);
    assert_eq!(
        store.review_decision(&d.id, &lead).await.unwrap().status,
        Status::Approved
    );
    let (state, problems) = derive(&d.id, &store.log_entries_for(&d.id).await.unwrap());
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(state.unwrap().escalations.len(), 1);
}
