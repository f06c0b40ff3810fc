//! Deriving a decision's state from its entries: the chain, the order of
//! events, and the shared refusal rules.

use gatehouse_core::execution::{ExecutionReceipt, RECEIPT_VERSION};
use gatehouse_core::{Decision, Review, ReviewChoice, Status, Verdict};
use gatehouse_log::entry::LogEntry;
use gatehouse_log::state::derive;
use time::{Duration, OffsetDateTime};

fn decision(verdict: Verdict) -> Decision {
    let json = serde_json::json!({
        "id": "dec_1", "request_id": "req_1", "created_by": "k1",
        "request": {"agent": "a", "action": "t", "subject": "s", "risk": "high"},
        "verdict": verdict, "status": verdict.initial_status(), "reasons": [],
        "policy_version": "pv_1", "evaluated_action": "t", "context": {},
        "created_at": "2026-01-01T00:00:00Z", "record_hash": "r", "request_hash": "",
        "action_hash": "sha256:aa"
    });
    serde_json::from_value(json).unwrap()
}

/// Leaves for `entries`, chained as the store chains them.
fn chain(entries: Vec<LogEntry>) -> Vec<(u64, Vec<u8>)> {
    let mut out: Vec<(u64, Vec<u8>)> = Vec::new();
    for (i, e) in entries.into_iter().enumerate() {
        let e = match out.last() {
            Some((_, prev)) if e.event.is_chained() => {
                e.after(hex::encode(gatehouse_log::proof::leaf_hash(prev).0))
            }
            _ => e,
        };
        out.push((i as u64 * 3, e.to_bytes()));
    }
    out
}

fn t0() -> OffsetDateTime {
    time::macros::datetime!(2026-01-01 00:00 UTC)
}

fn review(choice: ReviewChoice) -> LogEntry {
    LogEntry::review(
        "dec_1",
        &Review {
            decision: choice,
            reviewer_key_id: "r1".into(),
            reviewer_name: Some("Rita".into()),
            comment: None,
            reviewed_at: t0() + Duration::minutes(1),
            reviewer_user: None,
            groups: Vec::new(),
            action_hash: None,
            amended_payload: None,
        },
        true,
    )
}

fn token(exp: OffsetDateTime) -> LogEntry {
    LogEntry::token_issued(
        "dec_1",
        "tok_1",
        "kid",
        exp,
        "sha256:cc",
        t0() + Duration::minutes(2),
    )
}

fn receipt(at: OffsetDateTime, jti: Option<&str>) -> LogEntry {
    let r = ExecutionReceipt {
        receipt_version: RECEIPT_VERSION.into(),
        execution_id: "exe_1".into(),
        decision_id: "dec_1".into(),
        target_system: "s".into(),
        target_object: "o".into(),
        mutation: "m".into(),
        executor: "e".into(),
        state_before_hash: None,
        state_after_hash: None,
        token_jti: jti.map(str::to_string),
        action_hash: "sha256:aa".into(),
        reported_by: "k1".into(),
        executed_at: gatehouse_core::decision::rfc3339(at),
    };
    LogEntry::execution(&r, at)
}

#[test]
fn an_approved_decision_derives_from_its_chain() {
    let d = decision(Verdict::PendingReview);
    let leaves = chain(vec![
        LogEntry::decision(&d),
        review(ReviewChoice::Approve),
        token(t0() + Duration::minutes(12)),
        receipt(t0() + Duration::minutes(3), Some("tok_1")),
    ]);
    let (state, problems) = derive("dec_1", &leaves);
    assert!(problems.is_empty(), "{problems:?}");
    let s = state.unwrap();
    assert_eq!(s.status, Status::Approved);
    assert_eq!(s.permit_index(), Some(3), "the approving review");
    assert_eq!(s.reviews[0].item.reviewer_name.as_deref(), Some("Rita"));
    assert_eq!(s.executions.len(), 1);
}

#[test]
fn a_missing_or_replaced_entry_breaks_the_chain_and_is_named() {
    let d = decision(Verdict::PendingReview);
    let mut leaves = chain(vec![
        LogEntry::decision(&d),
        review(ReviewChoice::Approve),
        token(t0() + Duration::minutes(12)),
    ]);
    let removed = leaves.remove(1);
    let (_, problems) = derive("dec_1", &leaves);
    assert!(
        problems.iter().any(|p| p.contains(&format!(
            "log entry {} does not follow entry 0",
            leaves[1].0
        ))),
        "{problems:?}"
    );
    // Put back an entry with other content in its place: also named.
    let mut replaced = leaves.clone();
    let other = review(ReviewChoice::Reject)
        .after(hex::encode(gatehouse_log::proof::leaf_hash(&leaves[0].1).0));
    replaced.insert(1, (removed.0, other.to_bytes()));
    let (_, problems) = derive("dec_1", &replaced);
    assert!(!problems.is_empty(), "a reject in place of the approve");
}

#[test]
fn the_shared_rules_refuse_what_the_server_refuses() {
    let pending = decision(Verdict::PendingReview);
    // A review of a final decision, a token for a rejected one.
    let (_, problems) = derive(
        "dec_1",
        &chain(vec![
            LogEntry::decision(&pending),
            review(ReviewChoice::Reject),
            review(ReviewChoice::Approve),
        ]),
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains("a review of a decision that is rejected")),
        "{problems:?}"
    );
    // A receipt after the token expired, with or without the token's id.
    let allowed = decision(Verdict::Allow);
    for jti in [Some("tok_1"), None] {
        let (_, problems) = derive(
            "dec_1",
            &chain(vec![
                LogEntry::decision(&allowed),
                token(t0() + Duration::minutes(10)),
                receipt(t0() + Duration::minutes(11), jti),
            ]),
        );
        assert!(
            problems
                .iter()
                .any(|p| p.contains("after the approval token expired")),
            "{jti:?}: {problems:?}"
        );
    }
    // A second redemption.
    let redeem = |m| LogEntry::token_redeemed("dec_1", "tok_1", "k1", t0() + Duration::minutes(m));
    let (_, problems) = derive(
        "dec_1",
        &chain(vec![
            LogEntry::decision(&allowed),
            token(t0() + Duration::minutes(10)),
            redeem(3),
            redeem(4),
        ]),
    );
    assert!(
        problems
            .iter()
            .any(|p| p.contains(gatehouse_log::rules::REDEEMED)),
        "{problems:?}"
    );
}
