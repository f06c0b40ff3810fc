//! Approval tokens, receipts, outcomes, flags and retired token keys.

use std::sync::Arc;

use gatehouse_core::{ids, Verdict};
use gatehouse_log::entry::{LogEntry, LogEvent};
use serde_json::json;
use time::Duration;

use super::*;
use crate::prelude::*;
use crate::{IssuedToken, Redemption, StoreError};

pub async fn tokens_are_issued_once_and_redeemed_once(store: Arc<dyn Store>) {
    let d = sample_decision(Verdict::Allow, "k1", None, "t-tok");
    store.create_decision(&d, None).await.unwrap();
    let start = store.log_size().await.unwrap();
    let issued_at = now();
    let token = |jti: &str| sample_token(&d.id, jti, issued_at, issued_at + Duration::minutes(10));
    assert_eq!(store.issue_token(&token("a")).await.unwrap(), token("a"));
    // A second issue returns the first token, and logs nothing.
    assert_eq!(store.issue_token(&token("b")).await.unwrap().jti, "a");
    assert_eq!(store.get_token(&d.id).await.unwrap().unwrap().jti, "a");
    assert!(store.get_token("dec_none").await.unwrap().is_none());
    assert_eq!(store.log_size().await.unwrap(), start + 1);

    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = store.clone();
        let r = Redemption {
            jti: "a".into(),
            decision_id: d.id.clone(),
            redeemed_by: format!("executor-{i}"),
            at: now(),
        };
        tasks.push(tokio::spawn(async move { store.redeem_token(&r).await }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(index) => {
                ok += 1;
                let leaf = store.log_leaves(index, 1).await.unwrap().pop().unwrap().1;
                let entry = LogEntry::parse(&leaf).unwrap();
                assert_eq!(
                    (entry.event.kind(), entry.id.as_str()),
                    ("token_redeemed", d.id.as_str())
                );
            }
            Err(StoreError::AlreadyRedeemed) => {}
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert_eq!(ok, 1, "a token is redeemed exactly once");
    assert_eq!(store.log_size().await.unwrap(), start + 2);
    let redeemed = store.list_redemptions(&d.id).await.unwrap();
    assert_eq!(redeemed.len(), 1, "{redeemed:?}");
    assert_eq!(
        (redeemed[0].jti.as_str(), redeemed[0].decision_id.as_str()),
        ("a", d.id.as_str())
    );
    assert!(redeemed[0].redeemed_by.starts_with("executor-"));
    assert!(store.list_redemptions("dec_none").await.unwrap().is_empty());
}

pub async fn executions_outcomes_and_flags_are_logged(store: Arc<dyn Store>) {
    use gatehouse_core::execution::{self, ExecutionReceipt, OutcomeRecord, OutcomeStatus};
    let d = sample_decision(Verdict::Allow, "k1", None, "t-exe");
    store.create_decision(&d, None).await.unwrap();
    let start = store.log_size().await.unwrap();
    let receipt = ExecutionReceipt {
        receipt_version: execution::RECEIPT_VERSION.into(),
        execution_id: ids::execution_id(),
        decision_id: d.id.clone(),
        target_system: "stripe".into(),
        target_object: "re_1".into(),
        mutation: "create_refund".into(),
        executor: "billing-worker".into(),
        state_before_hash: Some("sha256:00".into()),
        state_after_hash: Some("sha256:11".into()),
        token_jti: Some("tok_1".into()),
        action_hash: d.action_hash.clone(),
        reported_by: "k1".into(),
        executed_at: execution::timestamp(now()),
    };
    let index = store.record_execution(&receipt, now()).await.unwrap();
    let leaf = store.log_leaves(index, 1).await.unwrap().pop().unwrap().1;
    let entry = LogEntry::parse(&leaf).unwrap();
    assert!(
        matches!(&entry.event, LogEvent::Execution { execution_hash, .. } if *execution_hash == receipt.hash()),
        "{entry:?}"
    );
    assert_eq!(store.list_executions(&d.id).await.unwrap(), vec![receipt]);

    let outcome = OutcomeRecord {
        record_version: execution::OUTCOME_VERSION.into(),
        outcome_id: ids::outcome_id(),
        decision_id: d.id.clone(),
        status: OutcomeStatus::Succeeded,
        action_taken: "refund issued".into(),
        observed_metrics: json!({"latency_ms": 120, "ratio": 0.25}),
        target_system: Some("stripe".into()),
        reported_by: "k1".into(),
        reported_at: execution::timestamp(now()),
    };
    store.record_outcome(&outcome, now()).await.unwrap();
    assert_eq!(store.list_outcomes(&d.id).await.unwrap(), vec![outcome]);
    assert!(store.list_outcomes("dec_none").await.unwrap().is_empty());

    store
        .flag_decision(&d.id, "executed a different payload", now())
        .await
        .unwrap();
    let flagged = store.get_decision(&d.id).await.unwrap().unwrap();
    assert_eq!(
        flagged.flag.as_deref(),
        Some("executed a different payload")
    );
    assert!(matches!(
        store.flag_decision("dec_none", "x", now()).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.log_size().await.unwrap(), start + 3);
}

pub async fn retired_token_keys_stay_while_their_tokens_live(store: Arc<dyn Store>) {
    let d = sample_decision(Verdict::Allow, "k1", None, "t-rot");
    store.create_decision(&d, None).await.unwrap();
    let issued_at = now();
    store
        .issue_token(&IssuedToken {
            kid: "old-kid".into(),
            ..sample_token(
                &d.id,
                "tok_rot",
                issued_at,
                issued_at + Duration::minutes(10),
            )
        })
        .await
        .unwrap();
    let start = store.log_size().await.unwrap();
    for kid in ["old-kid", "unused-kid"] {
        let jwk = format!(r#"{{"kid":"{kid}"}}"#);
        assert!(store.retire_token_key(kid, &jwk, now()).await.unwrap());
    }
    assert_eq!(
        store.log_size().await.unwrap(),
        start + 2,
        "each retirement is a key_event"
    );
    // A server that picks up the new key retires the old one again: no
    // second entry, and the first retirement's record stays.
    assert!(!store
        .retire_token_key("old-kid", r#"{"kid":"old-kid","changed":1}"#, now())
        .await
        .unwrap());
    assert_eq!(store.log_size().await.unwrap(), start + 2);
    let in_use = store.retired_token_keys_in_use(now()).await.unwrap();
    assert_eq!(
        in_use,
        vec![r#"{"kid":"old-kid"}"#.to_string()],
        "only keys with live tokens stay"
    );
    let later = issued_at + Duration::minutes(11);
    assert!(
        store
            .retired_token_keys_in_use(later)
            .await
            .unwrap()
            .is_empty(),
        "gone once its tokens expired"
    );
    // A server that has not seen the rotation yet still signs with the
    // retired key: that token keeps the key published until it expires.
    let late = sample_decision(Verdict::Allow, "k1", None, "t-rot");
    store.create_decision(&late, None).await.unwrap();
    store
        .issue_token(&IssuedToken {
            kid: "old-kid".into(),
            ..sample_token(
                &late.id,
                "tok_rot_late",
                issued_at + Duration::minutes(1),
                issued_at + Duration::minutes(30),
            )
        })
        .await
        .unwrap();
    assert_eq!(
        store.retired_token_keys_in_use(later).await.unwrap(),
        vec![r#"{"kid":"old-kid"}"#.to_string()],
        "a later token of a retired key keeps it"
    );
}
