//! One trait per capability, and [`Store`], which is all of them. Every
//! write that records an event (decision, review, expiry, task event, new
//! policy version, key change, token issue and redemption, receipt,
//! outcome, flag) appends its log entry in the same transaction, and every
//! committed transaction that appended ends with a signed checkpoint.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review, Status, TaskEvent};
use gatehouse_log::Hash;
use time::OffsetDateTime;

use crate::sql::EvidenceRow;
use crate::{
    ApiKey, CreateOutcome, DecisionQuery, IssuedToken, NewDecision, PolicyVersion, Redemption,
    Session, StoreResult, User,
};

/// Storing and reading decisions.
#[async_trait]
pub trait DecisionStore: Send + Sync {
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

    /// [`DecisionStore::insert_decision`] for a decision not yet prepared.
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

    /// The decisions with these ids, in any order; ids not found are left
    /// out. One query for many, e.g. for a page of log entries.
    async fn get_decisions(&self, ids: &[String]) -> StoreResult<Vec<Decision>>;

    /// Newest first, filtered and paged as `query` says.
    async fn list_decisions(&self, query: &DecisionQuery) -> StoreResult<Vec<Decision>>;

    /// How many decisions have `status` now (for the pending-review gauge).
    async fn count_decisions(&self, status: Status) -> StoreResult<u64>;
}

/// Resolving pending decisions.
#[async_trait]
pub trait ReviewStore: Send + Sync {
    /// Records a review if, and only if, the decision is still pending, its
    /// deadline is after `review.reviewed_at`, and its review rule admits
    /// the reviewer ([`crate::sql::judge_review`]); the decision is resolved
    /// once its reviews meet the rule. Atomic across replicas.
    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision>;

    /// Logs an `escalation` entry for every pending decision whose
    /// escalation time has come, returning (decision id, group) pairs.
    async fn escalate_due(&self, now: OffsetDateTime) -> StoreResult<Vec<(String, String)>>;

    /// Moves every pending decision whose deadline is at or before `now` to
    /// `expired`, returning their ids.
    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>>;
}

/// API keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn create_key(&self, key: &ApiKey) -> StoreResult<()>;

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>>;

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>>;

    /// Marks a key revoked. Returns false when no such key exists.
    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool>;
}

/// A change to a user account (see [`UserStore::update_user`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserUpdate {
    Disable,
    /// The new membership, sorted and without repeats.
    Groups(Vec<String>),
    /// The new Argon2id PHC string.
    Password(String),
}

/// People and their groups.
#[async_trait]
pub trait UserStore: Send + Sync {
    /// Creates a user with its groups and appends a `user_event` entry;
    /// `Duplicate` when the name is taken.
    async fn create_user(&self, user: &User) -> StoreResult<()>;

    async fn get_user(&self, name: &str) -> StoreResult<Option<User>>;

    /// Every user, by name.
    async fn list_users(&self) -> StoreResult<Vec<User>>;

    /// Applies one change and appends its `user_event` entry; returns the
    /// user as it is now, or `NotFound`. Disabling twice keeps the first
    /// time and logs nothing new.
    async fn update_user(
        &self,
        name: &str,
        update: &UserUpdate,
        at: OffsetDateTime,
    ) -> StoreResult<User>;

    /// Whether an active user belongs to `group`: a group exists while
    /// someone can review for it.
    async fn group_exists(&self, group: &str) -> StoreResult<bool>;

    /// Links an outside identity (a Slack user id, an OIDC subject) to a
    /// user, replacing the subject's earlier link; `None` unlinks it.
    async fn set_identity(
        &self,
        provider: &str,
        subject: &str,
        user: Option<&str>,
    ) -> StoreResult<()>;

    /// The user an outside identity is linked to.
    async fn user_by_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>>;
}

/// Console sessions, shared by every replica.
#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn create_session(&self, session: &Session) -> StoreResult<()>;

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>>;

    /// Records activity (for the idle expiry).
    async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> StoreResult<()>;

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()>;

    /// Deletes sessions idle since before `idle_before` or created before
    /// `created_before`; returns how many.
    async fn delete_expired_sessions(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> StoreResult<u64>;

    /// Stores a one-time sign-in link (the hash of its token).
    async fn create_sign_in_link(
        &self,
        id_hash: &str,
        user: &str,
        decision_id: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()>;

    /// Uses a sign-in link: marks it used and returns (user, decision) if
    /// it was unused and unexpired at `now_ms`; a second use gets `None`,
    /// whichever replica it reaches.
    async fn use_sign_in_link(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<(String, String)>>;
}

/// Approval tokens and the keys that signed them.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Stores `token` as the decision's approval token unless it already
    /// has one, and returns the decision's token (possibly the earlier one).
    /// A newly stored token appends a `token_issued` entry.
    async fn issue_token(&self, token: &IssuedToken) -> StoreResult<IssuedToken>;

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>>;

    /// Records the one redemption a token allows and appends a
    /// `token_redeemed` entry; returns its log index. A second redemption,
    /// from any replica, is `AlreadyRedeemed`.
    async fn redeem_token(&self, redemption: &Redemption) -> StoreResult<u64>;

    /// The redemptions recorded for a decision's token, oldest first (at
    /// most one, unless the table was edited behind the server's back).
    async fn list_redemptions(&self, decision_id: &str) -> StoreResult<Vec<Redemption>>;

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
}

/// What happened around decisions: receipts, outcomes, flags, task events.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    /// Stores a receipt or an outcome row and appends its entry in one
    /// transaction; returns the entry's index.
    async fn insert_evidence(&self, row: EvidenceRow) -> StoreResult<u64>;

    /// Stores a receipt (appending an `execution` entry); returns its index.
    async fn record_execution(
        &self,
        receipt: &ExecutionReceipt,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.insert_evidence(EvidenceRow::execution(receipt, at)?)
            .await
    }

    /// Stores an outcome (appending an `outcome` entry); returns its index.
    async fn record_outcome(
        &self,
        outcome: &OutcomeRecord,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.insert_evidence(EvidenceRow::outcome(outcome, at)?)
            .await
    }

    /// Flags a decision for owner review (appending a `flag` entry).
    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()>;

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>>;

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>>;

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()>;

    /// A task's events in the order they were recorded.
    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>>;
}

/// Every policy version ever used, for exact replay.
#[async_trait]
pub trait PolicyStore: Send + Sync {
    /// Records a policy version; storing an existing version is a no-op.
    async fn save_policy_version(&self, version: &PolicyVersion) -> StoreResult<()>;

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>>;
}

/// Reading the transparency log.
#[async_trait]
pub trait LogStore: Send + Sync {
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

/// A whole backend: every capability, and a readiness probe.
#[async_trait]
pub trait Store:
    DecisionStore
    + ReviewStore
    + KeyStore
    + UserStore
    + SessionStore
    + TokenStore
    + EvidenceStore
    + PolicyStore
    + LogStore
    + crate::outbox::OutboxStore
    + crate::hooks::HookStore
    + Send
    + Sync
    + 'static
{
    /// Cheap round trip to the database that also fails when a table of the
    /// schema is missing, for `/readyz`.
    async fn ping(&self) -> StoreResult<()>;
}

/// The capability traits, to call any of them on a `dyn Store`.
pub mod prelude {
    pub use super::{
        DecisionStore, EvidenceStore, KeyStore, LogStore, PolicyStore, ReviewStore, SessionStore,
        Store, TokenStore, UserStore,
    };
    pub use crate::outbox::OutboxStore;
}
