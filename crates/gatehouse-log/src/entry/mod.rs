//! Log entries. A leaf is the RFC 8785 canonical JSON of one typed entry,
//! `{"v":1,"type":...,"id":...,"ts":...,...}`. Entries carry digests of
//! large or caller-supplied content rather than the content, and no floats
//! (timestamps are RFC 3339 strings, digests are hex strings).
//!
//! [`LogEntry::leaf`] is the one place a leaf's bytes are built; every
//! backend, the server and the verifiers take them from there.

use gatehouse_core::canonical::{canonical_sha256_hex, to_canonical_vec};
use gatehouse_core::decision::rfc3339;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord, OutcomeStatus};
use gatehouse_core::review_rule::ReviewRule;
use gatehouse_core::{Decision, Review, ReviewChoice, Role, TaskEvent, Verdict};
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The version of the entries written now. Version 2 chains every entry
/// about a decision to the one before it (`prev`) and binds the content
/// version 1 left out (the reviewer's name, the token's claims, each
/// policy's text).
pub const ENTRY_VERSION: u64 = 2;
/// The oldest version still read (logs written before version 2).
pub const FIRST_VERSION: u64 = 1;

/// What happened, with the fields its leaf carries besides `v`, `type`,
/// `id` and `ts`. Optional fields are written as `null`, never left out,
/// so every entry of a type has the same keys.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LogEvent {
    /// A decision was made; `id` is the decision id.
    Decision {
        request_id: String,
        record_hash: String,
        verdict: Verdict,
        policy_version: String,
        action_hash: String,
        created_by: String,
        /// Who must approve a pending decision (its record's rule), so the
        /// log alone can tell whether its reviews approved it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        review_rule: Option<ReviewRule>,
    },
    /// A reviewer approved or rejected a pending decision; `id` is the
    /// decision id. Whether it resolved the decision follows from the
    /// decision's rule and the reviews before it.
    Review {
        decision: ReviewChoice,
        reviewer: String,
        /// Version 2: the reviewer's name as shown with the review.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reviewer_name: Option<String>,
        comment_hash: Option<String>,
        /// With review rules: who reviewed (the person, or the key's name),
        /// their groups then, and the action they saw or approved (an
        /// amendment's hash differs from the proposed action's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        person: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        action_hash: Option<String>,
        /// With review rules: whether this review resolved the decision
        /// (the rule was met, or it rejects); `derive` recomputes it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        resolves: Option<bool>,
    },
    /// A pending decision's escalation group became eligible; `id` is the
    /// decision id.
    Escalation { group: String },
    /// A pending decision passed its deadline; `id` is the decision id.
    Expiry {},
    /// Something the caller reported around a task; `id` is the event id.
    TaskEvent {
        task_id: String,
        decision_id: Option<String>,
        kind: String,
        message_hash: Option<String>,
        data_hash: String,
        created_by: String,
    },
    /// A policy set was first used; `id` is its version.
    PolicyVersion {
        files_hash: String,
        /// Version 2: `sha256:` of each policy's text, by policy id, so a
        /// packet's policy texts can be checked one by one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        policies: Option<BTreeMap<String, String>>,
    },
    /// An approval token was issued; `id` is the decision id.
    TokenIssued {
        jti: String,
        kid: String,
        exp: String,
        /// Version 2: `sha256:` of the canonical JSON of all its claims.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        claims_hash: Option<String>,
    },
    /// An approval token was redeemed; `id` is the decision id.
    TokenRedeemed { jti: String, redeemed_by: String },
    /// An execution receipt was recorded; `id` is the decision id.
    Execution {
        execution_id: String,
        execution_hash: String,
        action_hash: String,
        token_jti: Option<String>,
    },
    /// An outcome was recorded; `id` is the decision id.
    Outcome {
        outcome_id: String,
        outcome_hash: String,
        status: OutcomeStatus,
    },
    /// A decision was flagged for owner review, e.g. after an execution that
    /// did not match what was approved; `id` is the decision id.
    Flag { reason: String },
    /// An API key or a signing key changed; `id` is the key id (or kid).
    KeyEvent { event: KeyChange, role: String },
    /// A private hook for a no-code tool was created or revoked; `id` is
    /// the hook id. Its scope is on record, never its secret.
    HookEvent {
        event: KeyChange,
        name: String,
        workflow: String,
        actions: Vec<String>,
    },
    /// A person's account changed; `id` is the user's name. `groups` is
    /// the new membership when it was set (created, groups_set), so who
    /// could review what is on record.
    UserEvent {
        event: UserChange,
        role: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        groups: Option<Vec<String>>,
    },
}

/// What happened to a user account. A password change is recorded, never
/// the password or its hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UserChange {
    Created,
    Disabled,
    GroupsSet,
    PasswordSet,
}

/// What happened to a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyChange {
    Created,
    Revoked,
    Retired,
}

/// The `role` a retired approval-token signing key is logged with.
pub const TOKEN_SIGNING_ROLE: &str = "token-signing";

/// One entry, before it is given a place in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogEntry {
    pub v: u64,
    /// The record the entry is about (decision id, key id, event id, …).
    pub id: String,
    pub ts: String,
    /// Version 2, on every entry about a decision after its first: the leaf
    /// hash (hex) of the previous entry about the same decision. The entries
    /// about a decision form a chain inside the log, so none can be removed
    /// from the middle unnoticed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prev: Option<String>,
    #[serde(flatten)]
    pub event: LogEvent,
}

/// Why stored bytes are not a log entry this version can read.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EntryError {
    #[error("not a log entry: {0}")]
    Malformed(String),
    #[error("entry version {0} is not supported")]
    Version(u64),
    #[error("the bytes are not the canonical JSON of the entry they encode")]
    NotCanonical,
    #[error("a version {0} entry of type {1} lacks or has fields of another version")]
    Incomplete(u64, &'static str),
}

fn digest(value: &impl Serialize) -> String {
    format!("sha256:{}", canonical_sha256_hex(value).unwrap_or_default())
}

/// `sha256:` of a text's UTF-8 bytes (policy files, one policy's text).
pub fn text_hash(text: &str) -> String {
    format!(
        "sha256:{}",
        gatehouse_core::canonical::sha256_hex(text.as_bytes())
    )
}

/// `sha256:` of a review comment as a canonical JSON string: what a
/// `review` entry records for it.
pub fn comment_hash(comment: &str) -> String {
    digest(&comment)
}

/// `sha256:` of the canonical JSON of an approval token's claims: what a
/// `token_issued` entry binds.
pub fn claims_hash(claims: &impl Serialize) -> String {
    digest(claims)
}

/// [`claims_hash`] of the claims inside a compact JWT, read without
/// checking its signature (the hash is compared with a logged one).
pub fn claims_hash_of_jwt(token: &str) -> Option<String> {
    use base64::Engine as _;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    Some(claims_hash(&claims))
}

/// An entry serialised once: its exact leaf bytes and the columns a store
/// keeps beside them. Serialising is the costly part of an append, so hot
/// paths do it before they reach a store's single writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub kind: &'static str,
    pub id: String,
    pub bytes: Vec<u8>,
}

impl Leaf {
    /// The leaf's Merkle hash, hex (for a decision: its receipt hash).
    pub fn hash_hex(&self) -> String {
        hex::encode(crate::proof::leaf_hash(&self.bytes).0)
    }
}

impl LogEvent {
    /// Whether the entry is about a decision and follows an earlier entry
    /// about it (everything but the decision itself): these carry `prev`.
    pub fn is_chained(&self) -> bool {
        matches!(
            self,
            LogEvent::Review { .. }
                | LogEvent::Escalation { .. }
                | LogEvent::Expiry {}
                | LogEvent::TokenIssued { .. }
                | LogEvent::TokenRedeemed { .. }
                | LogEvent::Execution { .. }
                | LogEvent::Outcome { .. }
                | LogEvent::Flag { .. }
        )
    }

    /// Whether the version-2 fields are all present (`v2`) or all absent.
    fn fields_of_version(&self, v2: bool) -> bool {
        match self {
            LogEvent::Review { reviewer_name, .. } => reviewer_name.is_some() == v2,
            LogEvent::TokenIssued { claims_hash, .. } => claims_hash.is_some() == v2,
            LogEvent::PolicyVersion { policies, .. } => policies.is_some() == v2,
            _ => true,
        }
    }

    /// The entry's `type`, also stored beside the leaf as its kind.
    pub fn kind(&self) -> &'static str {
        match self {
            LogEvent::Decision { .. } => "decision",
            LogEvent::Review { .. } => "review",
            LogEvent::Escalation { .. } => "escalation",
            LogEvent::Expiry {} => "expiry",
            LogEvent::TaskEvent { .. } => "task_event",
            LogEvent::PolicyVersion { .. } => "policy_version",
            LogEvent::TokenIssued { .. } => "token_issued",
            LogEvent::TokenRedeemed { .. } => "token_redeemed",
            LogEvent::Execution { .. } => "execution",
            LogEvent::Outcome { .. } => "outcome",
            LogEvent::Flag { .. } => "flag",
            LogEvent::KeyEvent { .. } => "key_event",
            LogEvent::HookEvent { .. } => "hook_event",
            LogEvent::UserEvent { .. } => "user_event",
        }
    }
}

impl LogEntry {
    fn new(id: &str, ts: OffsetDateTime, event: LogEvent) -> LogEntry {
        LogEntry {
            v: ENTRY_VERSION,
            id: id.to_string(),
            ts: rfc3339(ts),
            prev: None,
            event,
        }
    }

    /// This entry, chained after the entry whose leaf hash (hex) is `prev`:
    /// the last entry about the same decision.
    pub fn after(mut self, prev: String) -> LogEntry {
        self.prev = Some(prev);
        self
    }

    /// The exact leaf bytes and the columns stored beside them: the one
    /// function that turns an entry into what the log holds.
    pub fn leaf(&self) -> Leaf {
        Leaf {
            kind: self.event.kind(),
            id: self.id.clone(),
            // Strings, integers, enums and maps of them always serialise.
            bytes: to_canonical_vec(self).unwrap_or_default(),
        }
    }

    /// The exact leaf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.leaf().bytes
    }

    /// Reads a leaf's bytes back into an entry, refusing anything that is
    /// not exactly the canonical bytes of a known entry of this version.
    pub fn parse(bytes: &[u8]) -> Result<LogEntry, EntryError> {
        let entry: LogEntry =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if !(FIRST_VERSION..=ENTRY_VERSION).contains(&entry.v) {
            return Err(EntryError::Version(entry.v));
        }
        let v2 = entry.v >= 2;
        let chain_ok = entry.prev.is_some() == (v2 && entry.event.is_chained());
        if !chain_ok || !entry.event.fields_of_version(v2) {
            return Err(EntryError::Incomplete(entry.v, entry.event.kind()));
        }
        if entry.to_bytes() != bytes {
            return Err(EntryError::NotCanonical);
        }
        Ok(entry)
    }
}

mod constructors;

#[cfg(test)]
mod tests;
