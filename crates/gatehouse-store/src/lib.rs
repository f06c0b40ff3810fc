//! The storage boundary. Every backend implements [`Store`] and passes the
//! same [`conformance`] suite, so the server cannot tell them apart.

#[cfg(feature = "conformance")]
pub mod conformance;
mod types;

pub use types::*;

use std::collections::HashMap;

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review, TaskEvent};
use gatehouse_log::Hash;
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// The decision is not pending (already reviewed, expired, or final).
    #[error("decision is {0}, not pending_review")]
    NotPending(String),
    #[error("a record with this id already exists")]
    Duplicate,
    /// The database failed; the message is for logs, never for callers.
    #[error("database error: {0}")]
    Backend(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The token was redeemed before; single use is enforced here.
    #[error("the token was already redeemed")]
    AlreadyRedeemed,
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The tables both backends keep. A store is usable only while every one
/// of them exists (see [`schema_probe_sql`]).
pub const TABLES: [&str; 12] = [
    "decisions",
    "events",
    "policy_versions",
    "api_keys",
    "log_entries",
    "log_hashes",
    "checkpoints",
    "approval_tokens",
    "token_redemptions",
    "executions",
    "outcomes",
    "token_keys",
];

/// One statement that reads no row but fails unless every table in
/// `tables` exists: readiness means the schema is usable, not just that
/// the database answers. Valid SQL for SQLite and PostgreSQL alike.
pub fn schema_probe_sql(tables: &[&str]) -> String {
    tables
        .iter()
        .map(|t| format!("SELECT 1 FROM {t} WHERE 1 = 0"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// Rebuilds a decision from its stored columns. Every backend keeps the
/// decision as first written in `body`, and the mutable state (status,
/// review, resolution time) in columns of its own.
pub fn decision_from_columns(
    body: &str,
    status: &str,
    review: Option<&str>,
    resolved_at_ms: Option<i64>,
    log_index: Option<i64>,
    flag: Option<String>,
) -> StoreResult<Decision> {
    let corrupt = |e: String| StoreError::Corrupt(e);
    let mut d: Decision = serde_json::from_str(body).map_err(|e| corrupt(e.to_string()))?;
    d.status = gatehouse_core::Status::parse(status)
        .ok_or_else(|| corrupt(format!("status {status:?}")))?;
    d.review = review
        .map(serde_json::from_str::<Review>)
        .transpose()
        .map_err(|e| corrupt(e.to_string()))?;
    d.resolved_at = resolved_at_ms.map(gatehouse_core::decision::from_unix_millis);
    d.log_index = log_index.map(|i| i as u64);
    d.flag = flag;
    Ok(d)
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip to the database that also fails when a table of the
    /// schema is missing, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;

    /// Stores a new decision. With an idempotency key, a second call with the
    /// same (key id, idempotency key) returns the first decision instead,
    /// whatever its body: the caller compares `request_hash`.
    /// Returns only once the decision is durably committed.
    ///
    /// With a token (an allowed decision's approval token), the token is
    /// stored and logged in the same transaction.
    /// The decision is shared rather than borrowed so that a store can hand
    /// it to its writer without copying it; the caller gets it back with
    /// `Arc::try_unwrap` once this returns.
    async fn insert_decision(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome>;

    /// [`Store::insert_decision`] for a decision not yet prepared.
    async fn create_decision(
        &self,
        decision: &Decision,
        token: Option<&IssuedToken>,
    ) -> StoreResult<CreateOutcome> {
        let mut new = NewDecision::new(decision.clone());
        if let Some(t) = token {
            new = new.with_token(t.clone());
        }
        self.insert_decision(Arc::new(new)).await
    }

    async fn get_decision(&self, id: &str) -> StoreResult<Option<Decision>>;

    async fn list_decisions(&self, query: &DecisionQuery) -> StoreResult<Vec<Decision>>;

    /// Applies a review if, and only if, the decision is still pending and
    /// its deadline is after `review.reviewed_at`. Atomic across replicas.
    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision>;

    /// Moves every pending decision whose deadline is at or before `now` to
    /// `expired`, returning their ids.
    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>>;

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()>;

    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>>;

    /// Records a policy version; storing an existing version is a no-op.
    async fn save_policy_version(&self, version: &PolicyVersion) -> StoreResult<()>;

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>>;

    async fn create_key(&self, key: &ApiKey) -> StoreResult<()>;

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;

    /// Marks a key revoked. Returns false when no such key exists.
    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;

    /// Stores `token` as the decision's approval token unless it already
    /// has one, and returns the decision's token (possibly the earlier one).
    /// A newly stored token appends a `token_issued` entry.
    async fn issue_token(&self, token: &IssuedToken) -> StoreResult<IssuedToken>;

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>>;

    /// Records the one redemption a token allows and appends a
    /// `token_redeemed` entry; returns its log index. A second redemption,
    /// from any replica, is `AlreadyRedeemed`.
    async fn redeem_token(&self, redemption: &Redemption) -> StoreResult<u64>;

    /// Stores a receipt (appending an `execution` entry); returns its index.
    async fn record_execution(
        &self,
        receipt: &ExecutionReceipt,
        at: OffsetDateTime,
    ) -> StoreResult<u64>;

    /// Stores an outcome (appending an `outcome` entry); returns its index.
    async fn record_outcome(&self, outcome: &OutcomeRecord, at: OffsetDateTime)
        -> StoreResult<u64>;

    /// Flags a decision for owner review (appending a `flag` entry).
    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>>;

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>>;

    /// Records that the approval-token key `kid` (public JWK as JSON) was
    /// replaced, appending a `key_event` entry. A key retired before is left
    /// as it was, with no second entry; returns whether it was newly retired.
    async fn retire_token_key(
        &self,
        kid: &str,
        jwk_json: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool>;

    /// Public JWKs (JSON) of retired token keys that signed a token still
    /// unexpired at `now`: they stay published until those tokens expire.
    async fn retired_token_keys_in_use(&self, now: OffsetDateTime) -> StoreResult<Vec<String>>;

    // The transparency log. Every write above that records an event
    // (decision, review, expiry, task event, new policy version, key created
    // or revoked) appends its entry in the same transaction, and every
    // committed transaction that appended ends with a signed checkpoint.

    /// The public key checkpoints are signed with (signed-note format).
    fn log_verifier_key(&self) -> &str;

    async fn log_size(&self) -> StoreResult<u64>;

    /// The newest signed checkpoint (a C2SP signed note), if any.
    async fn latest_checkpoint(&self) -> StoreResult<Option<String>>;

    /// Stored Merkle hashes by stored-hash index (see `gatehouse_log::tree`).
    async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<HashMap<u64, Hash>>;

    /// Every log entry about one record (a decision id, a key id, …), in
    /// log order, as (index, exact leaf bytes).
    async fn log_entries_for(&self, ref_id: &str) -> StoreResult<Vec<(u64, Vec<u8>)>>;

    /// Up to `limit` leaves from index `from`, in order, as exact leaf bytes.
    async fn log_leaves(&self, from: u64, limit: u32) -> StoreResult<Vec<(u64, Vec<u8>)>>;
}
