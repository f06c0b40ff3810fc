//! Log entries. A leaf is the RFC 8785 canonical JSON of one typed entry,
//! `{"v":1,"type":...,"id":...,"ts":...,...}`. Entries carry digests of
//! large or caller-supplied content rather than the content, and no floats
//! (timestamps are RFC 3339 strings, digests are hex strings).

use gatehouse_core::canonical::{canonical_sha256_hex, to_canonical_vec};
use gatehouse_core::decision::rfc3339;
use gatehouse_core::{Decision, Review, TaskEvent};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use time::OffsetDateTime;

pub const ENTRY_VERSION: u64 = 1;

/// One entry, before it is given a place in the log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub v: u64,
    #[serde(rename = "type")]
    pub kind: String,
    /// The record the entry is about (decision id, key id, event id, …).
    pub id: String,
    pub ts: String,
    #[serde(flatten)]
    pub fields: serde_json::Map<String, Value>,
}

fn digest(value: &impl Serialize) -> String {
    format!("sha256:{}", canonical_sha256_hex(value).unwrap_or_default())
}

fn entry(kind: &str, id: &str, ts: OffsetDateTime, fields: Value) -> Entry {
    Entry {
        v: ENTRY_VERSION,
        kind: kind.to_string(),
        id: id.to_string(),
        ts: rfc3339(ts),
        fields: match fields {
            Value::Object(m) => m,
            _ => serde_json::Map::new(),
        },
    }
}

/// An entry serialised once: its exact leaf bytes and the columns a store
/// keeps beside them. Serialising is the costly part of an append, so hot
/// paths do it before they reach a store's single writer.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaf {
    pub kind: String,
    pub id: String,
    pub bytes: Vec<u8>,
}

impl Leaf {
    /// The leaf's Merkle hash, hex (for a decision: its receipt hash).
    pub fn hash_hex(&self) -> String {
        hex::encode(crate::proof::leaf_hash(&self.bytes).0)
    }
}

impl From<&Entry> for Leaf {
    fn from(e: &Entry) -> Leaf {
        Leaf {
            kind: e.kind.clone(),
            id: e.id.clone(),
            bytes: e.to_bytes(),
        }
    }
}

impl Entry {
    /// The exact leaf bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Strings, integers and maps of them always serialise.
        to_canonical_vec(self).unwrap_or_default()
    }

    pub fn decision(d: &Decision) -> Entry {
        entry(
            "decision",
            &d.id,
            d.created_at,
            json!({
                "request_id": d.request_id,
                "record_hash": d.record_hash,
                "verdict": d.verdict,
                "policy_version": d.policy_version,
                "action_hash": d.action_hash,
                "created_by": d.created_by,
            }),
        )
    }

    pub fn review(decision_id: &str, r: &Review) -> Entry {
        entry(
            "review",
            decision_id,
            r.reviewed_at,
            json!({
                "decision": r.decision,
                "reviewer": r.reviewer_key_id,
                "comment_hash": r.comment.as_ref().map(digest),
            }),
        )
    }

    pub fn expiry(decision_id: &str, at: OffsetDateTime) -> Entry {
        entry("expiry", decision_id, at, json!({}))
    }

    pub fn task_event(e: &TaskEvent) -> Entry {
        entry(
            "task_event",
            &e.id,
            e.created_at,
            json!({
                "task_id": e.task_id,
                "decision_id": e.decision_id,
                "kind": e.kind,
                "message_hash": e.message.as_ref().map(digest),
                "data_hash": digest(&e.data),
                "created_by": e.created_by,
            }),
        )
    }

    pub fn policy_version(version: &str, files_json: &str, at: OffsetDateTime) -> Entry {
        entry(
            "policy_version",
            version,
            at,
            json!({"files_hash": format!("sha256:{}", gatehouse_core::canonical::sha256_hex(files_json.as_bytes()))}),
        )
    }

    pub fn token_issued(
        decision_id: &str,
        jti: &str,
        kid: &str,
        expires_at: OffsetDateTime,
        at: OffsetDateTime,
    ) -> Entry {
        entry(
            "token_issued",
            decision_id,
            at,
            json!({"jti": jti, "kid": kid, "exp": rfc3339(expires_at)}),
        )
    }

    pub fn token_redeemed(
        decision_id: &str,
        jti: &str,
        redeemed_by: &str,
        at: OffsetDateTime,
    ) -> Entry {
        entry(
            "token_redeemed",
            decision_id,
            at,
            json!({"jti": jti, "redeemed_by": redeemed_by}),
        )
    }

    pub fn execution(r: &gatehouse_core::execution::ExecutionReceipt, at: OffsetDateTime) -> Entry {
        entry(
            "execution",
            &r.decision_id,
            at,
            json!({
                "execution_id": r.execution_id,
                "execution_hash": r.hash(),
                "action_hash": r.action_hash,
                "token_jti": r.token_jti,
            }),
        )
    }

    pub fn outcome(o: &gatehouse_core::execution::OutcomeRecord, at: OffsetDateTime) -> Entry {
        entry(
            "outcome",
            &o.decision_id,
            at,
            json!({"outcome_id": o.outcome_id, "outcome_hash": o.hash(), "status": o.status}),
        )
    }

    /// A decision flagged for owner review, e.g. after an execution that
    /// did not match what was approved.
    pub fn flag(decision_id: &str, reason: &str, at: OffsetDateTime) -> Entry {
        entry("flag", decision_id, at, json!({"reason": reason}))
    }

    pub fn key_event(key_id: &str, event: &str, role: &str, at: OffsetDateTime) -> Entry {
        entry(
            "key_event",
            key_id,
            at,
            json!({"event": event, "role": role}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leaf_bytes_are_canonical_and_carry_no_payload() {
        let e = Entry::key_event("k1", "created", "agent", OffsetDateTime::UNIX_EPOCH);
        let text = String::from_utf8(e.to_bytes()).unwrap();
        assert_eq!(
            text,
            r#"{"event":"created","id":"k1","role":"agent","ts":"1970-01-01T00:00:00Z","type":"key_event","v":1}"#
        );
        let back: Entry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, e);
    }
}
