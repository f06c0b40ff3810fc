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

pub async fn lists_filter_and_page_in_every_order(store: Arc<dyn Store>) {
    let task = format!("t-{}", gatehouse_core::ids::key_id());
    let mut ids = Vec::new();
    for (n, agent) in ["wf-a", "wf-b", "wf-a"].iter().enumerate() {
        let mut d = sample_decision(Verdict::PendingReview, "k-list", None, &task);
        d.request.agent = agent.to_string();
        d.request.subject = format!("subject-{n}");
        // Deadlines in the reverse order of creation.
        d.deadline = Some(d.created_at + Duration::hours(10 - n as i64));
        let d = d.seal();
        store.create_decision(&d, None).await.unwrap();
        ids.push(d.id);
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    let query = |f: &dyn Fn(&mut crate::DecisionQuery)| {
        let mut q = crate::DecisionQuery {
            task_id: Some(task.clone()),
            limit: 10,
            ..Default::default()
        };
        f(&mut q);
        q
    };
    let listed = |q: crate::DecisionQuery| {
        let store = store.clone();
        async move {
            store
                .list_decisions(&q)
                .await
                .unwrap()
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    let by_workflow = listed(query(&|q| q.workflow = Some("wf-a".into()))).await;
    assert_eq!(by_workflow, vec![ids[2].clone(), ids[0].clone()]);
    let by_subject = listed(query(&|q| q.subject = Some("subject-1".into()))).await;
    assert_eq!(by_subject, vec![ids[1].clone()]);
    let by_tool = listed(query(&|q| q.tool = Some("no-such-tool".into()))).await;
    assert!(by_tool.is_empty());
    let oldest = listed(query(&|q| q.order = crate::ListOrder::Oldest)).await;
    assert_eq!(oldest, ids);
    let after_first = listed(query(&|q| {
        q.order = crate::ListOrder::Oldest;
        q.after = Some(ids[0].clone());
    }))
    .await;
    assert_eq!(after_first, ids[1..]);
    let soonest = listed(query(&|q| q.order = crate::ListOrder::Deadline)).await;
    assert_eq!(
        soonest,
        vec![ids[2].clone(), ids[1].clone(), ids[0].clone()]
    );
    let first = store.get_decision(&ids[2]).await.unwrap().unwrap();
    let cursor = format!(
        "{}:{}",
        gatehouse_core::decision::to_unix_millis(first.deadline.unwrap()),
        first.id
    );
    let next = listed(query(&|q| {
        q.order = crate::ListOrder::Deadline;
        q.after = Some(cursor.clone());
        q.limit = 1;
    }))
    .await;
    assert_eq!(next, vec![ids[1].clone()]);
    let future = listed(query(&|q| q.since_ms = Some(i64::MAX - 1))).await;
    assert!(future.is_empty());

    // Reviewed by a person: matched in the reviews.
    let d = ruled(vec![requirement(&["finance"], 2)]);
    store.create_decision(&d, None).await.unwrap();
    store
        .review_decision(&d.id, &by(&d, "ana_b", &["finance"], ReviewChoice::Approve))
        .await
        .unwrap();
    let by_person = store
        .list_decisions(&crate::DecisionQuery {
            person: Some("ana_b".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(
        by_person.iter().map(|d| &d.id).collect::<Vec<_>>(),
        vec![&d.id]
    );
    let wildcard = store
        .list_decisions(&crate::DecisionQuery {
            person: Some("ana%b".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(wildcard.is_empty(), "LIKE wildcards in a name are literal");
}
