pub use gatehouse_core::Role;
use gatehouse_core::{Decision, Status};

use gatehouse_log::entry::{Leaf, LogEntry};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

#[derive(Debug, Clone, PartialEq)]
pub enum CreateOutcome {
    /// Stored, with the log index of its `decision` entry and, when the
    /// backend has it at hand, the signed checkpoint committed with it.
    Created {
        log_index: u64,
        checkpoint: Option<String>,
    },
    /// The idempotency key was used before; here is the original decision.
    Existing(Box<Decision>),
}

/// How a list of decisions is ordered; each order pages with its own
/// cursor (keyset pagination, never an offset).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ListOrder {
    /// Newest first; the next page starts `before` the last id.
    #[default]
    Newest,
    /// Oldest first; the next page starts `after` the last id.
    Oldest,
    /// Soonest deadline first (then id); `after` is `deadline_ms:id`.
    Deadline,
}

#[derive(Debug, Clone, Default)]
pub struct DecisionQuery {
    pub status: Option<Status>,
    pub task_id: Option<String>,
    /// Only decisions whose id sorts before this one (ids sort by time).
    pub before: Option<String>,
    /// The cursor of the ascending orders (see [`ListOrder`]).
    pub after: Option<String>,
    /// The workflow (agent) that asked.
    pub workflow: Option<String>,
    /// The tool (action) requested.
    pub tool: Option<String>,
    pub subject: Option<String>,
    /// Someone who reviewed it (person, or key name): matched as a whole
    /// JSON string in the decision's reviews.
    pub person: Option<String>,
    /// Created at or after, Unix ms.
    pub since_ms: Option<i64>,
    /// Created before, Unix ms.
    pub until_ms: Option<i64>,
    pub order: ListOrder,
    pub limit: u32,
}

/// A bind parameter of a list query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Text(String),
    Int(i64),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyVersion {
    pub version: String,
    /// The files as JSON (`[{"name","text"}]`), exactly as hashed.
    pub files_json: String,
    /// `sha256:` of each policy's text by policy id, logged with the
    /// version (not stored in its row; empty when read back).
    #[serde(default)]
    pub policy_hashes: std::collections::BTreeMap<String, String>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_used_at: OffsetDateTime,
}

/// A stored API key. The secret itself is never stored, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(skip_serializing)]
    pub secret_hash: Vec<u8>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The key that created this one through the API, if any: its
    /// principal for separation of duties. Keys made with the CLI have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minted_by: Option<String>,
    /// The person the key belongs to, if any: what they do with it is
    /// theirs (reviews, separation of duties). A key without one is its
    /// own identity, by name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
}

/// A decision ready to store, with its log entries serialised once: the
/// server needs the decision's leaf hash (for the token and the response)
/// and the store needs the leaf bytes, so both take them from here.
#[derive(Debug, Clone)]
pub struct NewDecision {
    pub decision: Decision,
    pub leaf: Leaf,
    /// An allowed decision's approval token and its `token_issued` entry.
    pub token: Option<(IssuedToken, Leaf)>,
}

impl NewDecision {
    pub fn new(decision: Decision) -> Self {
        NewDecision {
            leaf: LogEntry::decision(&decision).leaf(),
            decision,
            token: None,
        }
    }

    /// Adds the approval token to store and log in the same transaction;
    /// its entry follows the decision's in the decision's chain.
    pub fn with_token(mut self, t: IssuedToken) -> Self {
        let leaf = t.log_entry().after(self.leaf.hash_hex()).leaf();
        self.token = Some((t, leaf));
        self
    }

    /// The decision's leaf hash, hex: what its receipt hash will be.
    pub fn receipt_hash(&self) -> String {
        self.leaf.hash_hex()
    }
}

/// The approval token issued for a decision (at most one per decision).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedToken {
    pub decision_id: String,
    pub jti: String,
    pub kid: String,
    /// The token without its signature: `header.claims`, base64url, the
    /// text its signature covers. The signature is never stored, so a copy
    /// of the database holds no token anyone can present; the server signs
    /// this again when the agent reads its token (Ed25519 is
    /// deterministic, so it is the same token each time).
    pub unsigned: String,
    pub expires_at: OffsetDateTime,
    pub created_at: OffsetDateTime,
    /// `sha256:` of the canonical JSON of the token's claims (what its log
    /// entry binds); see `gatehouse_log::entry::claims_hash`.
    pub claims_hash: String,
}

impl IssuedToken {
    /// The token's `token_issued` entry, before it is chained.
    pub fn log_entry(&self) -> LogEntry {
        LogEntry::token_issued(
            &self.decision_id,
            &self.jti,
            &self.kid,
            self.expires_at,
            &self.claims_hash,
            self.created_at,
        )
    }
}

/// One redemption of a token: the moment an executor used it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redemption {
    pub jti: String,
    pub decision_id: String,
    pub redeemed_by: String,
    pub at: OffsetDateTime,
}

/// A person who reviews, audits or administers: signs in to the console
/// and may own API keys. Groups route reviews. The password is stored only
/// as an Argon2id PHC string. External identities (an OIDC subject, a
/// Slack user id) attach to the name through the `user_identities` table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub name: String,
    pub role: Role,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Sorted and without repeats.
    pub groups: Vec<String>,
    #[serde(skip_serializing)]
    pub password_hash: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub disabled_at: Option<OffsetDateTime>,
}

impl User {
    pub fn is_active(&self) -> bool {
        self.disabled_at.is_none()
    }
}

/// A console session. The browser holds a random token; only its SHA-256
/// is stored, so a copy of the database signs nobody in. The CSRF token
/// is kept server-side and checked on every form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Hex SHA-256 of the cookie's token.
    pub id_hash: String,
    pub user: String,
    pub csrf: String,
    pub created_at: OffsetDateTime,
    pub last_seen_at: OffsetDateTime,
}
