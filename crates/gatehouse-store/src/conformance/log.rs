//! The transparency log: every event logged, gap-free, checkpointed, one tree across writers.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::{ids, ReviewChoice, Role, Status, TaskEvent, Verdict};
use gatehouse_log::checkpoint;
use gatehouse_log::entry::LogEntry;
use gatehouse_log::proof::{leaf_hash, verify_inclusion};
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use serde_json::json;

use super::*;
use crate::prelude::*;
use crate::{ApiKey, CreateOutcome, PolicyVersion, Redemption, StoreError};
use time::Duration;

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
        minted_by: None,
        user: None,
    };
    store.create_key(&key).await.unwrap();
    store.revoke_key(&key.id, now()).await.unwrap();
    store.revoke_key(&key.id, now()).await.unwrap();
    let pv = PolicyVersion {
        version: "pv_log".into(),
        files_json: "[]".into(),
        policy_hashes: Default::default(),
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

/// Every entry about a decision names the one before it, on every write
/// path (the decision and its token in one batch, reviews, tokens,
/// redemptions, receipts, outcomes, flags), so the state derived from the
/// log alone is the stored state.
pub async fn entries_about_a_decision_form_a_chain(store: Arc<dyn Store>) {
    use gatehouse_core::execution::{self, ExecutionReceipt};
    let d = sample_decision(Verdict::PendingReview, "k1", None, "t-chain");
    store.create_decision(&d, None).await.unwrap();
    let approve = review(ReviewChoice::Approve, now());
    store.review_decision(&d.id, &approve).await.unwrap();
    let issued = now();
    let token = sample_token(&d.id, "tok_chain", issued, issued + Duration::minutes(10));
    store.issue_token(&token).await.unwrap();
    store
        .redeem_token(&Redemption {
            jti: "tok_chain".into(),
            decision_id: d.id.clone(),
            redeemed_by: "k1".into(),
            at: now(),
        })
        .await
        .unwrap();
    let receipt = ExecutionReceipt {
        receipt_version: execution::RECEIPT_VERSION.into(),
        execution_id: ids::execution_id(),
        decision_id: d.id.clone(),
        target_system: "s".into(),
        target_object: "o".into(),
        mutation: "m".into(),
        executor: "e".into(),
        state_before_hash: None,
        state_after_hash: None,
        token_jti: Some("tok_chain".into()),
        action_hash: d.action_hash.clone(),
        reported_by: "k1".into(),
        executed_at: execution::timestamp(now()),
    };
    store.record_execution(&receipt, now()).await.unwrap();
    store
        .flag_decision(&d.id, "looked odd", now())
        .await
        .unwrap();
    let entries = store.log_entries_for(&d.id).await.unwrap();
    assert_eq!(entries.len(), 6);
    let (state, problems) = gatehouse_log::state::derive(&d.id, &entries);
    assert!(problems.is_empty(), "{problems:?}");
    let state = state.unwrap();
    assert!(state.chained);
    assert_eq!(state.status, Status::Approved);
    assert_eq!(state.flags.len(), 1);
    let stored = store.get_decision(&d.id).await.unwrap().unwrap();
    assert_eq!(stored.status, state.status, "the row is what the log says");

    // An allowed decision stored with its token in one batch chains too.
    let allowed = sample_decision(Verdict::Allow, "k1", None, "t-chain-2");
    let t = sample_token(
        &allowed.id,
        "tok_batch",
        issued,
        issued + Duration::minutes(10),
    );
    store.create_decision(&allowed, Some(&t)).await.unwrap();
    let entries = store.log_entries_for(&allowed.id).await.unwrap();
    let (state, problems) = gatehouse_log::state::derive(&allowed.id, &entries);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(state.unwrap().token.unwrap().item.jti, "tok_batch");
}
