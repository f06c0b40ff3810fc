//! The behaviour every [`Store`] must have. Backends run it with
//! [`conformance_tests!`](crate::conformance_tests); each check panics with a
//! description of what the backend got wrong.

use std::sync::Arc;

use gatehouse_core::{
    ids, ActionRequest, Decision, Review, ReviewChoice, Risk, Status, TaskEvent, Verdict,
};
use serde_json::json;
use time::{Duration, OffsetDateTime};

use crate::{
    ApiKey, CreateOutcome, DecisionQuery, IssuedToken, PolicyVersion, Redemption, Role, Store,
    StoreError,
};
use gatehouse_log::checkpoint::{self, LogSigner};
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_log::proof::{leaf_hash, verify_inclusion};
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use std::collections::HashMap;

/// A fresh checkpoint signer for a test store.
pub fn test_signer() -> Arc<LogSigner> {
    Arc::new(
        LogSigner::generate("gatehouse.test/log")
            .expect("valid origin")
            .1,
    )
}

/// Generates one `#[tokio::test]` per conformance check. `$make` is an async
/// function returning `(Arc<dyn Store>, guard)`; the guard keeps whatever the
/// store needs (a temporary directory, a schema) alive for the test.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@tests $make,
            create_and_get_round_trips,
            idempotency_key_returns_the_original,
            concurrent_idempotent_creates_store_one,
            review_resolves_only_pending,
            review_after_deadline_is_refused,
            concurrent_reviews_apply_once,
            expire_due_moves_only_due_pending,
            list_filters_and_pages,
            events_are_listed_in_order,
            policy_versions_are_write_once,
            keys_create_list_revoke,
            log_records_every_event_with_a_checkpoint,
            concurrent_appends_are_gap_free,
            a_refused_decision_does_not_fail_its_batch,
            tokens_are_issued_once_and_redeemed_once,
            executions_outcomes_and_flags_are_logged,
            retired_token_keys_stay_while_their_tokens_live
        );
    };
    (@tests $make:path, $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make().await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

fn now() -> OffsetDateTime {
    gatehouse_core::decision::truncate_to_millis(OffsetDateTime::now_utc())
}

/// A realistic decision, hashed like the server hashes them.
pub fn sample_decision(
    verdict: Verdict,
    created_by: &str,
    idempotency_key: Option<&str>,
    task_id: &str,
) -> Decision {
    let request = ActionRequest {
        agent: "Customer Support".into(),
        action: "issue_refund".into(),
        subject: "cus_99".into(),
        risk: Risk::High,
        summary: vec!["Customer requested refund".into()],
        payload: json!({"amount": 500, "currency": "usd"})
            .as_object()
            .cloned()
            .unwrap(),
        task_id: Some(task_id.into()),
        task_label: Some("Refund".into()),
        preview: None,
        owner: None,
        source_record_id: None,
        question: None,
        evidence: vec![],
    };
    let created_at = now();
    let deadline = (verdict == Verdict::PendingReview).then(|| created_at + Duration::hours(1));
    let id = ids::decision_id();
    let request_id = ids::request_id();
    let context = json!({"risk": "high", "local_hour": 12});
    let action_hash = request.action_hash();
    Decision {
        id,
        request_id,
        created_by: created_by.into(),
        request,
        verdict,
        status: verdict.initial_status(),
        reasons: vec![],
        policy_version: "pv_test".into(),
        evaluated_action: "issue_refund".into(),
        context,
        created_at,
        deadline,
        review: None,
        resolved_at: None,
        record_hash: String::new(),
        idempotency_key: idempotency_key.map(str::to_string),
        request_hash: "rh".into(),
        action_hash,
        token_ttl_secs: None,
        flag: None,
        log_index: None,
    }
    .seal()
}

fn review(choice: ReviewChoice, at: OffsetDateTime) -> Review {
    Review {
        decision: choice,
        reviewer_key_id: "reviewer1".into(),
        reviewer_name: Some("Rita".into()),
        comment: Some("looks fine".into()),
        reviewed_at: at,
    }
}

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
}

/// Rebuilds the tree from the stored leaves alone and returns its root.
async fn root_from_leaves(store: &dyn Store) -> (u64, Hash) {
    let leaves = store.log_leaves(0, u32::MAX).await.unwrap();
    let mut stored: HashMap<u64, Hash> = HashMap::new();
    for (expected, (idx, bytes)) in leaves.iter().enumerate() {
        assert_eq!(*idx, expected as u64, "log indexes must be gap-free");
        let op = Op::Append {
            n: *idx,
            leaf: leaf_hash(bytes),
        };
        let fetched = op
            .needs()
            .unwrap()
            .into_iter()
            .map(|i| (i, stored[&i]))
            .collect();
        let Output::Stored(new) = op.run(&fetched).unwrap() else {
            panic!("append")
        };
        stored.extend(new);
    }
    let size = leaves.len() as u64;
    let op = Op::Root { size };
    let fetched = op
        .needs()
        .unwrap()
        .into_iter()
        .map(|i| (i, stored[&i]))
        .collect();
    let Output::Root(root) = op.run(&fetched).unwrap() else {
        panic!("root")
    };
    (size, root)
}

/// The latest checkpoint, verified with the store's own key.
async fn verified_checkpoint(store: &dyn Store) -> checkpoint::Verified {
    let note = store
        .latest_checkpoint()
        .await
        .unwrap()
        .expect("a checkpoint after writes");
    checkpoint::verify(&note, store.log_verifier_key()).expect("checkpoint signed by the log key")
}

pub async fn log_records_every_event_with_a_checkpoint(store: Arc<dyn Store>) {
    let size = || async { store.log_size().await.unwrap() };
    let start = size().await;
    let pending = sample_decision(Verdict::PendingReview, "k1", None, "t-log");
    let CreateOutcome::Created { log_index, .. } =
        store.create_decision(&pending, None).await.unwrap()
    else {
        panic!("created")
    };
    assert_eq!(log_index, start);
    assert_eq!(size().await, start + 1);
    // A failed write appends nothing.
    assert!(store.create_decision(&pending, None).await.is_err());
    assert_eq!(
        size().await,
        start + 1,
        "a refused write must not be logged"
    );

    let at = now();
    store
        .review_decision(&pending.id, &review(ReviewChoice::Approve, at))
        .await
        .unwrap();
    assert_eq!(size().await, start + 2);
    assert!(store
        .review_decision(&pending.id, &review(ReviewChoice::Approve, at))
        .await
        .is_err());
    assert_eq!(size().await, start + 2);

    let event = TaskEvent {
        id: ids::event_id(),
        task_id: "t-log".into(),
        decision_id: Some(pending.id.clone()),
        kind: "executed".into(),
        message: None,
        data: json!({"ok": true}),
        created_by: "k1".into(),
        created_at: now(),
    };
    store.add_event(&event).await.unwrap();
    let key = ApiKey {
        id: ids::key_id(),
        name: "log".into(),
        role: Role::Agent,
        secret_hash: vec![1; 32],
        created_at: now(),
        revoked_at: None,
    };
    store.create_key(&key).await.unwrap();
    store.revoke_key(&key.id, now()).await.unwrap();
    store.revoke_key(&key.id, now()).await.unwrap();
    let pv = PolicyVersion {
        version: "pv_log".into(),
        files_json: "[]".into(),
        first_used_at: now(),
    };
    store.save_policy_version(&pv).await.unwrap();
    store.save_policy_version(&pv).await.unwrap();
    let due = sample_decision(Verdict::PendingReview, "k1", None, "t-log");
    store.create_decision(&due, None).await.unwrap();
    let expired = store.expire_due(due.deadline.unwrap()).await.unwrap();
    assert!(expired.contains(&due.id));
    // event, key created, key revoked (once), policy version (once),
    // decision, and one expiry per expired decision.
    assert_eq!(size().await, start + 2 + 5 + expired.len() as u64);

    // The leaf at the decision's index is exactly its entry.
    let leaves = store.log_leaves(log_index, 1).await.unwrap();
    assert_eq!(leaves[0].1, LogEntry::decision(&pending).to_bytes());
    let stored = store.get_decision(&pending.id).await.unwrap().unwrap();
    assert_eq!(stored.log_index, Some(log_index));

    // The checkpoint covers everything, is signed by the log key, and its
    // root is the root of the stored leaves.
    let cp = verified_checkpoint(store.as_ref()).await;
    assert_eq!(cp.size, size().await);
    let (n, root) = root_from_leaves(store.as_ref()).await;
    assert_eq!((n, root.0), (cp.size, cp.root.0));

    // An inclusion proof built from stored hashes verifies against it.
    let op = Op::Inclusion {
        index: log_index,
        size: cp.size,
    };
    let hashes = store.read_log_hashes(op.needs().unwrap()).await.unwrap();
    let Output::Proof(proof) = op.run(&hashes).unwrap() else {
        panic!("proof")
    };
    let leaf = leaf_hash(&LogEntry::decision(&pending).to_bytes());
    verify_inclusion(&proof, cp.size, cp.root, log_index, leaf).expect("inclusion proof");
}

pub async fn concurrent_appends_are_gap_free(store: Arc<dyn Store>) {
    let start = store.log_size().await.unwrap();
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let d = sample_decision(Verdict::Allow, "k1", None, "t-gap");
            match store.create_decision(&d, None).await.unwrap() {
                CreateOutcome::Created { log_index, .. } => log_index,
                other => panic!("unexpected {other:?}"),
            }
        }));
    }
    let mut indexes = Vec::new();
    for t in tasks {
        indexes.push(t.await.unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        (start..start + 16).collect::<Vec<_>>(),
        "indexes must be unique and gap-free"
    );
    let size = assert_checkpoint_covers_every_leaf(store.as_ref()).await;
    assert_eq!(size, start + 16);
}

/// Stores group-commit concurrent decisions; a duplicate among them is
/// refused alone, and neither it nor its log entry is stored.
pub async fn a_refused_decision_does_not_fail_its_batch(store: Arc<dyn Store>) {
    let original = sample_decision(Verdict::Allow, "k1", None, "t-dup");
    store.create_decision(&original, None).await.unwrap();
    let start = store.log_size().await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..12 {
        let store = store.clone();
        let d = if i == 5 {
            original.clone()
        } else {
            sample_decision(Verdict::PendingReview, "k1", None, "t-dup")
        };
        tasks.push(tokio::spawn(async move {
            (d.id.clone(), store.create_decision(&d, None).await)
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            (id, Ok(CreateOutcome::Created { log_index, .. })) => created.push((log_index, id)),
            (id, Err(StoreError::Duplicate)) => assert_eq!(id, original.id),
            other => panic!("unexpected {other:?}"),
        }
    }
    created.sort();
    assert_eq!(created.len(), 11, "every other decision is stored");
    let indexes: Vec<u64> = created.iter().map(|c| c.0).collect();
    assert_eq!(indexes, (start..start + 11).collect::<Vec<_>>());
    for (index, id) in &created {
        let stored = store.get_decision(id).await.unwrap().expect("stored");
        assert_eq!(stored.log_index, Some(*index));
    }
    let size = assert_checkpoint_covers_every_leaf(store.as_ref()).await;
    assert_eq!(size, start + 11);
}

pub async fn tokens_are_issued_once_and_redeemed_once(store: Arc<dyn Store>) {
    let d = sample_decision(Verdict::Allow, "k1", None, "t-tok");
    store.create_decision(&d, None).await.unwrap();
    let start = store.log_size().await.unwrap();
    let issued_at = now();
    let token = |jti: &str| IssuedToken {
        decision_id: d.id.clone(),
        jti: jti.into(),
        kid: "kid1".into(),
        token: format!("token-{jti}"),
        expires_at: issued_at + Duration::minutes(10),
        created_at: issued_at,
    };
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
            decision_id: d.id.clone(),
            jti: "tok_rot".into(),
            kid: "old-kid".into(),
            token: "t".into(),
            expires_at: issued_at + Duration::minutes(10),
            created_at: issued_at,
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
            decision_id: late.id.clone(),
            jti: "tok_rot_late".into(),
            kid: "old-kid".into(),
            token: "t".into(),
            expires_at: issued_at + Duration::minutes(30),
            created_at: issued_at + Duration::minutes(1),
        })
        .await
        .unwrap();
    assert_eq!(
        store.retired_token_keys_in_use(later).await.unwrap(),
        vec![r#"{"kid":"old-kid"}"#.to_string()],
        "a later token of a retired key keeps it"
    );
}

/// Two stores on one database (two server replicas, or a server and the
/// CLI) append to one log. Each writer keeps the log's right edge in
/// memory between transactions, so each must notice the other's appends.
/// Not in [`conformance_tests!`]: the backend's test opens both stores.
pub async fn two_writers_share_one_log(a: Arc<dyn Store>, b: Arc<dyn Store>) {
    let start = a.log_size().await.unwrap();
    let create = |s: Arc<dyn Store>, verdict| async move {
        let d = sample_decision(verdict, "k1", None, "t-two");
        match s.create_decision(&d, None).await.unwrap() {
            CreateOutcome::Created { log_index, .. } => log_index,
            other => panic!("unexpected {other:?}"),
        }
    };
    // Alternating one at a time: each append follows one by the other store.
    let mut indexes = Vec::new();
    for i in 0..6 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        indexes.push(create(s, Verdict::Allow).await);
    }
    // And concurrently, so batches of both interleave.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(create(s, Verdict::PendingReview)));
    }
    for t in tasks {
        indexes.push(t.await.unwrap());
    }
    indexes.sort_unstable();
    assert_eq!(indexes, (start..start + 26).collect::<Vec<_>>());
    // Whichever store signed last, its checkpoint is the root of all leaves.
    for s in [&a, &b] {
        assert_checkpoint_covers_every_leaf(s.as_ref()).await;
    }
}

/// Asserts that the latest checkpoint is signed by the store's log key and
/// that its size and root are those of the stored leaves, which must be
/// gap-free. Returns the log's size.
pub async fn assert_checkpoint_covers_every_leaf(store: &dyn Store) -> u64 {
    let cp = verified_checkpoint(store).await;
    let (n, root) = root_from_leaves(store).await;
    assert_eq!((n, root.0), (cp.size, cp.root.0));
    n
}
