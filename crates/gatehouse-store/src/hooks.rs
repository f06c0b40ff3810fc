//! Private hooks for no-code tools (n8n, Zapier, Make): an endpoint
//! `/hooks/{id}` that may create decisions for one workflow and a few
//! actions, authenticated by a secret the tool holds instead of an API
//! key. A hook is recorded in the log when it is created and revoked,
//! like a key.

use async_trait::async_trait;

use crate::sql::Columns;
use crate::{StoreError, StoreResult};

/// A hook as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookRecord {
    pub id: String,
    pub name: String,
    /// The only workflow (the Decide API's `context.workflow`) it may ask
    /// for.
    pub workflow: String,
    /// The only actions (`context.requested_action`) it may ask for.
    pub actions: Vec<String>,
    /// Kept server-side: the tool sends it in a header or signs the body
    /// with it (HMAC-SHA256), so the server needs it, not a hash of it.
    pub secret: String,
    /// The key (or `cli`) that created it.
    pub created_by: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

#[async_trait]
pub trait HookStore: Send + Sync {
    /// Stores a hook and logs its creation in the same transaction;
    /// `Duplicate` if its id or name is taken.
    async fn create_hook(&self, hook: &HookRecord) -> StoreResult<()>;
    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>>;
    /// Every hook, revoked ones included, oldest first.
    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>>;
    /// Revokes a hook and logs it; false if there is no such hook.
    /// Revoking twice keeps the first time and logs nothing new.
    async fn revoke_hook(&self, id: &str, at_ms: i64) -> StoreResult<bool>;
}

/// The columns [`hook_from`] reads, in its order.
pub const HOOK_COLUMNS: &str =
    "id, name, workflow, actions, secret, created_by, created_at_ms, revoked_at_ms";

pub fn hook_from(r: &dyn Columns) -> StoreResult<HookRecord> {
    Ok(HookRecord {
        id: r.text(0)?,
        name: r.text(1)?,
        workflow: r.text(2)?,
        actions: serde_json::from_str(&r.text(3)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        secret: r.text(4)?,
        created_by: r.text(5)?,
        created_at_ms: r.int(6)?,
        revoked_at_ms: r.opt_int(7)?,
    })
}

/// The log entry for a hook's creation or revocation: its scope is on
/// record, never its secret.
pub fn hook_entry(
    hook: &HookRecord,
    change: gatehouse_log::entry::KeyChange,
    at_ms: i64,
) -> gatehouse_log::entry::LogEntry {
    gatehouse_log::entry::LogEntry::hook(
        &hook.id,
        change,
        &hook.name,
        &hook.workflow,
        &hook.actions,
        gatehouse_core::decision::from_unix_millis(at_ms),
    )
}

pub fn actions_json(actions: &[String]) -> StoreResult<String> {
    serde_json::to_string(actions).map_err(|e| StoreError::Corrupt(e.to_string()))
}
