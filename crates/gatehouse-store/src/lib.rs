//! The storage boundary. A backend implements one trait per capability
//! ([`DecisionStore`], [`ReviewStore`], [`KeyStore`], [`TokenStore`],
//! [`EvidenceStore`], [`PolicyStore`], [`LogStore`]) and [`Store`], which
//! is all of them, and passes the same conformance suite (the
//! `conformance` feature), so the application cannot tell backends apart.
//! What both backends compute the same way (column lists, row mapping, the
//! list query, the review rule) is in [`sql`], once.

mod capabilities;
#[cfg(feature = "conformance")]
pub mod conformance;
pub mod hooks;
pub mod outbox;
pub mod sql;
mod types;

pub use capabilities::*;
pub use hooks::HookStore;
pub use outbox::OutboxStore;
pub use types::*;

#[derive(Debug, Clone, thiserror::Error)]
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
    /// The database cannot be used right now (unreachable, disk full,
    /// read-only, locked): a condition that passes, so callers may retry.
    /// The message is for logs, never for callers.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The token was redeemed before; single use is enforced here.
    #[error("the token was already redeemed")]
    AlreadyRedeemed,
    /// The decision's review rule refuses this review (self-review, an
    /// ineligible reviewer, a second approval by the same person).
    #[error("{0}")]
    ReviewRefused(gatehouse_core::review_rule::Refusal),
    /// Revoking the key would leave no active admin key.
    #[error("this is the last active admin key")]
    LastAdmin,
}

pub type StoreResult<T> = Result<T, StoreError>;

impl StoreError {
    /// The same failure, its message prefixed with what was being done;
    /// whether it passes (an outage) or not is kept.
    pub fn context(&self, doing: &str) -> StoreError {
        match self {
            StoreError::Unavailable(m) => StoreError::Unavailable(format!("{doing}: {m}")),
            other => StoreError::Backend(format!("{doing}: {other}")),
        }
    }
}

/// The tables both backends keep. A store is usable only while every one
/// of them exists (see [`schema_probe_sql`]).
pub const TABLES: [&str; 23] = [
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
    "users",
    "user_groups",
    "user_identities",
    "console_sessions",
    "outbox_cursor",
    "deliveries",
    "delivery_attempts",
    "notification_refs",
    "webhooks",
    "sign_in_links",
    "hooks",
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

/// Records one committed group commit: how many jobs it held and how long
/// its transaction took, by backend (`sqlite`, `postgres`). Stores call it
/// so both report the same metrics.
pub fn record_batch(store: &'static str, jobs: usize, took: std::time::Duration) {
    metrics::histogram!("gatehouse_store_batch_size", "store" => store).record(jobs as f64);
    metrics::histogram!("gatehouse_store_commit_seconds", "store" => store)
        .record(took.as_secs_f64());
}
