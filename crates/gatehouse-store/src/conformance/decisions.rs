//! Decisions, idempotency, lists, task events, policy versions and keys.

use std::sync::Arc;

use gatehouse_core::{ids, Role, Status, TaskEvent, Verdict};
use serde_json::json;

use super::*;
use crate::prelude::*;
use crate::{ApiKey, CreateOutcome, DecisionQuery, PolicyVersion, StoreError};

pub async fn create_and_get_round_trips(store: Arc<dyn Store>) {
    store.ping().await.expect("ping");
    let d = sample_decision(Verdict::Allow, "k1", None, "t1");
    let CreateOutcome::Created { log_index, .. } = store.create_decision(&d, None).await.unwrap()
    else {
        panic!("expected a new decision")
    };
    let got = store
        .get_decision(&d.id)
        .await
        .unwrap()
        .expect("stored decision");
    let expected = Decision {
        log_index: Some(log_index),
        ..d.clone()
    };
    assert_eq!(
        got, expected,
        "a decision must read back exactly as written"
    );
    assert!(got.record_hash_matches());
    assert!(store.get_decision("dec_missing").await.unwrap().is_none());
    let other = sample_decision(Verdict::Allow, "k1", None, "t1");
    store.create_decision(&other, None).await.unwrap();
    let mut many = store
        .get_decisions(&[d.id.clone(), "dec_missing".into(), other.id.clone()])
        .await
        .unwrap();
    many.sort_by(|a, b| a.id.cmp(&b.id));
    let mut want = vec![d.id.clone(), other.id.clone()];
    want.sort();
    assert_eq!(
        many.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        want,
        "get_decisions returns the decisions found, each once"
    );
    assert!(many.contains(&expected));
    assert!(store.get_decisions(&[]).await.unwrap().is_empty());
    assert!(matches!(
        store.create_decision(&d, None).await,
        Err(StoreError::Duplicate)
    ));
}

pub async fn idempotency_key_returns_the_original(store: Arc<dyn Store>) {
    let first = sample_decision(Verdict::Allow, "k1", Some("idem-1"), "t1");
    assert!(matches!(
        store.create_decision(&first, None).await.unwrap(),
        CreateOutcome::Created { .. }
    ));
    let retry = sample_decision(Verdict::Reject, "k1", Some("idem-1"), "t1");
    match store.create_decision(&retry, None).await.unwrap() {
        CreateOutcome::Existing(original) => assert_eq!(original.id, first.id),
        other => panic!("expected the original decision, got {other:?}"),
    }
    assert!(
        store.get_decision(&retry.id).await.unwrap().is_none(),
        "retry must not be stored"
    );
    // Idempotency keys are scoped per API key.
    let other_key = sample_decision(Verdict::Allow, "k2", Some("idem-1"), "t1");
    assert!(matches!(
        store.create_decision(&other_key, None).await.unwrap(),
        CreateOutcome::Created { .. }
    ));
}

pub async fn concurrent_idempotent_creates_store_one(store: Arc<dyn Store>) {
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let d = sample_decision(Verdict::Allow, "k1", Some("race"), "t-race");
            store.create_decision(&d, None).await.unwrap()
        }));
    }
    let mut created = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), CreateOutcome::Created { .. }) {
            created += 1;
        }
    }
    assert_eq!(created, 1, "exactly one concurrent create may win");
    let q = DecisionQuery {
        task_id: Some("t-race".into()),
        limit: 100,
        ..Default::default()
    };
    assert_eq!(store.list_decisions(&q).await.unwrap().len(), 1);
}

pub async fn list_filters_and_pages(store: Arc<dyn Store>) {
    let mut ids = Vec::new();
    for i in 0..5 {
        let verdict = if i % 2 == 0 {
            Verdict::Allow
        } else {
            Verdict::PendingReview
        };
        let d = sample_decision(verdict, "k1", None, "t-list");
        store.create_decision(&d, None).await.unwrap();
        ids.push(d.id);
    }
    let all = store
        .list_decisions(&DecisionQuery {
            task_id: Some("t-list".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    let listed: Vec<_> = all.iter().map(|d| d.id.clone()).collect();
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(listed, newest_first, "newest first");
    let pending = store
        .list_decisions(&DecisionQuery {
            task_id: Some("t-list".into()),
            status: Some(Status::PendingReview),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(pending.len(), 2);
    let page = store
        .list_decisions(&DecisionQuery {
            task_id: Some("t-list".into()),
            before: Some(newest_first[1].clone()),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    let page_ids: Vec<_> = page.iter().map(|d| d.id.clone()).collect();
    assert_eq!(page_ids, newest_first[2..4].to_vec());
}

pub async fn events_are_listed_in_order(store: Arc<dyn Store>) {
    let task = format!("task-{}", ids::event_id());
    for kind in ["before_action", "after_action"] {
        let e = TaskEvent {
            id: ids::event_id(),
            task_id: task.clone(),
            decision_id: Some("dec_x".into()),
            kind: kind.into(),
            message: Some(format!("{kind} happened")),
            data: json!({"ok": true}),
            created_by: "k1".into(),
            created_at: now(),
        };
        store.add_event(&e).await.unwrap();
    }
    let events = store.list_events(&task).await.unwrap();
    let kinds: Vec<_> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["before_action", "after_action"]);
    assert_eq!(events[0].data, json!({"ok": true}));
    assert!(store.list_events("no-such-task").await.unwrap().is_empty());
}

pub async fn policy_versions_are_write_once(store: Arc<dyn Store>) {
    let v = PolicyVersion {
        version: "pv_abc".into(),
        files_json: r#"[{"name":"a.cedar","text":"permit(principal,action,resource);"}]"#.into(),
        policy_hashes: Default::default(),
        first_used_at: now(),
    };
    store.save_policy_version(&v).await.unwrap();
    let mut changed = v.clone();
    changed.files_json = "[]".into();
    store.save_policy_version(&changed).await.unwrap();
    assert_eq!(store.get_policy_version("pv_abc").await.unwrap(), Some(v));
    assert!(store.get_policy_version("pv_nope").await.unwrap().is_none());
}

pub async fn keys_create_list_revoke(store: Arc<dyn Store>) {
    let key = ApiKey {
        id: ids::key_id(),
        name: "ci".into(),
        role: Role::Reviewer,
        secret_hash: vec![7; 32],
        created_at: now(),
        revoked_at: None,
        minted_by: None,
        user: None,
    };
    store.create_key(&key).await.unwrap();
    assert_eq!(store.get_key(&key.id).await.unwrap(), Some(key.clone()));
    assert!(store
        .list_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.id == key.id));
    let at = now();
    assert!(store.revoke_key(&key.id, at).await.unwrap());
    assert_eq!(
        store.get_key(&key.id).await.unwrap().unwrap().revoked_at,
        Some(at)
    );
    assert!(!store.revoke_key("missing", at).await.unwrap());

    // A minted key keeps its minter; the last active admin key stays.
    let admin = ApiKey {
        id: ids::key_id(),
        name: "admin".into(),
        role: Role::Admin,
        minted_by: None,
        ..key.clone()
    };
    let minted = ApiKey {
        id: ids::key_id(),
        name: "second admin".into(),
        minted_by: Some(admin.id.clone()),
        ..admin.clone()
    };
    for k in [&admin, &minted] {
        store.create_key(k).await.unwrap();
    }
    assert_eq!(
        store.get_key(&minted.id).await.unwrap(),
        Some(minted.clone())
    );
    // Other admin keys may exist from other tests of this store: revoke
    // every active one but the last.
    let mut active: Vec<ApiKey> = store
        .list_keys()
        .await
        .unwrap()
        .into_iter()
        .filter(|k| k.role == Role::Admin && k.revoked_at.is_none())
        .collect();
    let last = active.pop().unwrap();
    for k in &active {
        assert!(store.revoke_key(&k.id, at).await.unwrap());
    }
    assert!(matches!(
        store.revoke_key(&last.id, at).await,
        Err(crate::StoreError::LastAdmin)
    ));
    assert!(store
        .get_key(&last.id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at
        .is_none());
}

pub async fn decisions_are_counted_by_status(store: Arc<dyn Store>) {
    for (verdict, task) in [
        (Verdict::PendingReview, "t-count-1"),
        (Verdict::PendingReview, "t-count-2"),
        (Verdict::Allow, "t-count-3"),
    ] {
        let d = sample_decision(verdict, "k1", None, task);
        store.create_decision(&d, None).await.unwrap();
    }
    assert_eq!(
        store.count_decisions(Status::PendingReview).await.unwrap(),
        2
    );
    assert_eq!(store.count_decisions(Status::Allow).await.unwrap(), 1);
    assert_eq!(store.count_decisions(Status::Expired).await.unwrap(), 0);
}
