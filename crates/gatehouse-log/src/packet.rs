//! Decision Packet v1: everything about one decision, with the exact log
//! leaves and inclusion proofs to one signed checkpoint, so an auditor can
//! check it offline with a log key they trust — never one from the packet.

use std::collections::HashMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{DecisionRecord, SubmittedRequest};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::checkpoint;
use crate::entry::{LogEntry, LogEvent};
use crate::proof::{leaf_hash, verify_inclusion};
use crate::Hash;

pub const PACKET_VERSION: &str = "decision-packet/v1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Packet {
    pub packet_version: String,
    pub decision_id: String,
    pub record: DecisionRecord,
    pub record_hash: String,
    /// The request as submitted (payload, preview, summary, and for the
    /// Decide API its context); its action is bound by `record.action_hash`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<SubmittedRequest>,
    pub status: String,
    #[serde(default)]
    pub reviews: Vec<Value>,
    /// The approval token's claims and key id; never the token itself.
    #[serde(default)]
    pub token: Option<TokenSummary>,
    #[serde(default)]
    pub executions: Vec<ExecutionReceipt>,
    #[serde(default)]
    pub outcomes: Vec<OutcomeRecord>,
    pub policy: PolicyIntelligence,
    pub audit_chain: AuditChain,
    /// Hints only (algorithms, key ids, URLs); verification never trusts them.
    pub verification_hints: Value,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub packet_hash: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TokenSummary {
    pub kid: String,
    pub claims: Value,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyIntelligence {
    pub policy_version: String,
    /// The text of the policies that determined the verdict.
    pub policies: Vec<PolicyText>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct PolicyText {
    pub id: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AuditChain {
    /// One signed checkpoint every entry below is proven against.
    pub checkpoint: String,
    pub entries: Vec<ChainEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChainEntry {
    pub index: u64,
    /// The exact leaf bytes, base64.
    pub leaf: String,
    /// Inclusion proof (base64 hashes) to the checkpoint's root.
    pub proof: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Check {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl Packet {
    /// SHA-256 of the canonical packet without `packet_hash`.
    pub fn compute_hash(&self) -> String {
        let mut unhashed = self.clone();
        unhashed.packet_hash = String::new();
        canonical_sha256_hex(&unhashed).unwrap_or_default()
    }

    pub fn seal(mut self) -> Self {
        self.packet_hash = self.compute_hash();
        self
    }
}

fn check(checks: &mut Vec<Check>, name: &str, ok: bool, detail: impl Into<String>) {
    checks.push(Check {
        name: name.to_string(),
        ok,
        detail: detail.into(),
    });
}

fn unix(ts: &str) -> Option<i64> {
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

fn hash_of(b64: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(b64).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// Runs every offline check with `log_key`, the verifier key the auditor
/// trusts. The packet passes only if every returned check is ok.
pub fn verify(packet: &Packet, log_key: &str) -> Vec<Check> {
    let mut checks = Vec::new();
    let id = &packet.decision_id;
    check(
        &mut checks,
        "packet_hash",
        packet.compute_hash() == packet.packet_hash,
        "SHA-256 of the canonical packet without packet_hash",
    );
    check(
        &mut checks,
        "packet_version",
        packet.packet_version == PACKET_VERSION,
        &packet.packet_version,
    );
    let cp = match checkpoint::verify(&packet.audit_chain.checkpoint, log_key) {
        Ok(cp) => {
            check(
                &mut checks,
                "checkpoint_signature",
                true,
                format!("{} size {}", cp.origin, cp.size),
            );
            Some(cp)
        }
        Err(e) => {
            check(&mut checks, "checkpoint_signature", false, e.to_string());
            None
        }
    };

    // Every entry: proven in the checkpoint, parsed, and about this decision.
    let mut entries: Vec<LogEntry> = Vec::new();
    for e in &packet.audit_chain.entries {
        let name = format!("entry_{}", e.index);
        let Ok(bytes) = STANDARD.decode(&e.leaf) else {
            check(&mut checks, &name, false, "leaf is not base64");
            continue;
        };
        let proof: Option<Vec<Hash>> = e.proof.iter().map(|p| hash_of(p)).collect();
        let proven = match (&cp, proof) {
            (Some(cp), Some(proof)) => {
                verify_inclusion(&proof, cp.size, cp.root, e.index, leaf_hash(&bytes)).is_ok()
            }
            _ => false,
        };
        let parsed = LogEntry::parse(&bytes);
        let canonical = parsed.is_ok();
        let parsed = parsed.ok();
        let about = parsed.as_ref().is_some_and(|p| &p.id == id);
        check(
            &mut checks,
            &name,
            proven && canonical && about,
            format!(
                "inclusion proof {}, canonical JSON {}, refers to {id} {}",
                if proven { "verifies" } else { "FAILS" },
                if canonical { "yes" } else { "NO" },
                if about { "yes" } else { "NO" }
            ),
        );
        if let Some(p) = parsed {
            entries.push(p);
        }
    }
    let events = || entries.iter().map(|e| &e.event);

    // The record is the one that was logged.
    let decisions: Vec<(&String, &String)> = events()
        .filter_map(|e| match e {
            LogEvent::Decision {
                record_hash,
                action_hash,
                ..
            } => Some((record_hash, action_hash)),
            _ => None,
        })
        .collect();
    let logged_hash = decisions.first().map(|(record, _)| (*record).clone());
    check(
        &mut checks,
        "record_logged",
        decisions.len() == 1 && logged_hash.as_deref() == Some(packet.record_hash.as_str()),
        format!(
            "{} decision entries; logged record_hash {:?}",
            decisions.len(),
            logged_hash
        ),
    );
    check(
        &mut checks,
        "record_hash",
        packet.record.hash() == packet.record_hash && &packet.record.decision_id == id,
        "the record's canonical SHA-256 equals record_hash",
    );

    // The request shown is the one decided: its action hashes to the
    // record's action hash, and it names the record's workflow and subject.
    if let Some(r) = &packet.request {
        let hash = gatehouse_core::action_hash(&r.tool_name, &r.subject, &r.payload);
        let bound = hash == packet.record.action_hash
            && r.workflow_name == packet.record.workflow
            && r.subject == packet.record.subject;
        check(
            &mut checks,
            "request_binding",
            bound,
            if bound {
                "the request's action hashes to the record's action_hash".to_string()
            } else {
                format!("the request's action hashes to {hash}, not the record's")
            },
        );
    }

    // One action hash everywhere: decision, token, receipts.
    let approved = packet.record.action_hash.clone();
    let mut seen: Vec<(String, Option<String>)> = vec![(
        "decision entry".into(),
        decisions.first().map(|(_, action)| (*action).clone()),
    )];
    if let Some(t) = &packet.token {
        seen.push((
            "token".into(),
            t.claims
                .get("act")
                .and_then(Value::as_str)
                .map(str::to_string),
        ));
    }
    for r in &packet.executions {
        seen.push((
            format!("receipt {}", r.execution_id),
            Some(r.action_hash.clone()),
        ));
    }
    let logged_executions: Vec<(&String, &String)> = events()
        .filter_map(|e| match e {
            LogEvent::Execution {
                execution_hash,
                action_hash,
                ..
            } => Some((execution_hash, action_hash)),
            _ => None,
        })
        .collect();
    for (_, action_hash) in &logged_executions {
        seen.push(("execution entry".into(), Some((*action_hash).clone())));
    }
    let mismatched: Vec<&str> = seen
        .iter()
        .filter(|(_, h)| h.as_deref() != Some(approved.as_str()))
        .map(|(w, _)| w.as_str())
        .collect();
    check(
        &mut checks,
        "action_binding",
        mismatched.is_empty(),
        if mismatched.is_empty() {
            format!("all bind {approved}")
        } else {
            format!("differs in: {}", mismatched.join(", "))
        },
    );

    // Receipts and outcomes are the logged ones, in time.
    let execution_hashes: Vec<String> = logged_executions
        .iter()
        .map(|(hash, _)| (*hash).clone())
        .collect();
    let decided = unix(&packet.record.created_at);
    let expires = packet
        .token
        .as_ref()
        .and_then(|t| t.claims.get("exp"))
        .and_then(Value::as_i64);
    for r in &packet.executions {
        let logged = execution_hashes.contains(&r.hash());
        let at = unix(&r.executed_at);
        let after_decision = matches!((at, decided), (Some(a), Some(d)) if a >= d);
        let before_expiry = match (at, expires) {
            (Some(a), Some(exp)) => a <= exp,
            (Some(_), None) => true,
            _ => false,
        };
        check(
            &mut checks,
            &format!("receipt_{}", r.execution_id),
            logged && after_decision && before_expiry && &r.decision_id == id,
            format!("logged {logged}, after the decision {after_decision}, before the token expired {before_expiry}"),
        );
    }
    let outcome_hashes: Vec<String> = events()
        .filter_map(|e| match e {
            LogEvent::Outcome { outcome_hash, .. } => Some(outcome_hash.clone()),
            _ => None,
        })
        .collect();
    for o in &packet.outcomes {
        check(
            &mut checks,
            &format!("outcome_{}", o.outcome_id),
            outcome_hashes.contains(&o.hash()) && &o.decision_id == id,
            "the outcome's hash is logged",
        );
    }

    // At most one redemption per token, and the token is the logged one.
    let mut redemptions: HashMap<String, usize> = HashMap::new();
    for e in events() {
        if let LogEvent::TokenRedeemed { jti, .. } = e {
            *redemptions.entry(jti.clone()).or_default() += 1;
        }
    }
    check(
        &mut checks,
        "single_redemption",
        redemptions.values().all(|n| *n <= 1),
        format!("{redemptions:?}"),
    );
    if let Some(t) = &packet.token {
        let jti = t
            .claims
            .get("jti")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let issued = events()
            .any(|e| matches!(e, LogEvent::TokenIssued { jti: issued, .. } if issued == jti));
        check(&mut checks, "token_logged", issued, format!("token {jti}"));
    }
    checks
}
