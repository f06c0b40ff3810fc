//! The offline checks of a Decision Packet. The packet's entries are proven
//! in a checkpoint signed by the key the auditor trusts; the decision's
//! state is derived from those entries alone, with the same function and
//! refusal rules the server uses; then every bound field of the packet is
//! compared with that state. Each check says, in plain words, what it
//! compared and what differed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use super::reviews::{review_rule, reviews};
use super::{ChainEntry, Check, Packet, PACKET_VERSION};
use crate::checkpoint::{self, Verified};
use crate::entry::{claims_hash, text_hash, LogEntry, LogEvent};
use crate::proof::{leaf_hash, verify_inclusion};
use crate::state::{derive, unix, DecisionState};
use crate::Hash;

pub(super) struct Checks(pub(super) Vec<Check>);

impl Checks {
    pub(super) fn add(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.0.push(Check {
            name: name.into(),
            ok,
            detail: detail.into(),
        });
    }

    /// A check that passes with `fine` when `problems` is empty, and
    /// otherwise fails listing them.
    pub(super) fn all(&mut self, name: &str, problems: Vec<String>, fine: impl Into<String>) {
        if problems.is_empty() {
            self.add(name, true, fine);
        } else {
            self.add(name, false, problems.join("; "));
        }
    }
}

fn hash_of(b64: &str) -> Option<Hash> {
    let bytes = STANDARD.decode(b64).ok()?;
    Some(Hash(bytes.try_into().ok()?))
}

/// The entry's bytes if they decode and are proven in `cp`.
fn proven(e: &ChainEntry, cp: Option<&Verified>) -> Result<Vec<u8>, String> {
    let bytes = STANDARD
        .decode(&e.leaf)
        .map_err(|_| "its leaf is not base64".to_string())?;
    let proof: Option<Vec<Hash>> = e.proof.iter().map(|p| hash_of(p)).collect();
    let ok = match (cp, proof) {
        (Some(cp), Some(proof)) => {
            verify_inclusion(&proof, cp.size, cp.root, e.index, leaf_hash(&bytes)).is_ok()
        }
        _ => false,
    };
    if ok {
        Ok(bytes)
    } else {
        Err("its inclusion proof does not lead to the signed checkpoint's root".into())
    }
}

/// Runs every offline check with `log_key`, the verifier key the auditor
/// trusts. The packet is verified only if every returned check is ok.
pub fn verify(packet: &Packet, log_key: &str) -> Vec<Check> {
    let mut c = Checks(Vec::new());
    let id = &packet.decision_id;
    c.add(
        "packet_hash",
        packet.compute_hash() == packet.packet_hash,
        "SHA-256 of the canonical packet without packet_hash (a checksum; anyone can recompute it)",
    );
    c.add(
        "packet_version",
        packet.packet_version == PACKET_VERSION,
        format!(
            "the packet is {}; this verifier reads {PACKET_VERSION}",
            packet.packet_version
        ),
    );
    let cp = match checkpoint::verify(&packet.audit_chain.checkpoint, log_key) {
        Ok(cp) => {
            c.add(
                "checkpoint_signature",
                true,
                format!(
                    "the checkpoint of {} at size {} is signed by the given key",
                    cp.origin, cp.size
                ),
            );
            Some(cp)
        }
        Err(e) => {
            c.add("checkpoint_signature", false, e.to_string());
            None
        }
    };

    // Every entry is proven in the checkpoint and is about this decision.
    let mut leaves: Vec<(u64, Vec<u8>)> = Vec::new();
    for e in &packet.audit_chain.entries {
        let name = format!("entry_{}", e.index);
        match proven(e, cp.as_ref()) {
            Err(why) => c.add(name, false, format!("log entry {}: {why}", e.index)),
            Ok(bytes) => {
                let about = LogEntry::parse(&bytes).map(|p| p.id == *id);
                match about {
                    Ok(true) => c.add(
                        name,
                        true,
                        format!(
                            "log entry {} is in the signed log and is about {id}",
                            e.index
                        ),
                    ),
                    Ok(false) => c.add(
                        name,
                        false,
                        format!("log entry {} is about another record", e.index),
                    ),
                    Err(err) => c.add(name, false, format!("log entry {}: {err}", e.index)),
                }
                leaves.push((e.index, bytes));
            }
        }
    }
    let in_order = leaves.windows(2).all(|w| w[0].0 < w[1].0);
    let (state, problems) = derive(id, &leaves);
    let mut chain = problems;
    if !in_order {
        chain.push("the entries are not in log order".into());
    }
    c.all(
        "chain",
        chain,
        format!(
            "{} entries form an unbroken chain from the decision's own entry, each allowed by the rules where it stands",
            leaves.len()
        ),
    );
    let Some(state) = state else {
        c.add(
            "status",
            false,
            "no decision entry: no state can be derived",
        );
        return c.0;
    };

    record(&mut c, packet, &state);
    c.add(
        "status",
        packet.status == state.status.as_str(),
        format!(
            "the packet says {}; its log entries say {}",
            packet.status,
            state.status.as_str()
        ),
    );
    c.all(
        "reviews",
        reviews(packet, &state.reviews),
        format!(
            "{} reviews, each equal to its log entry",
            state.reviews.len()
        ),
    );
    review_rule(&mut c, packet, &state);
    token(&mut c, packet, &state);
    evidence(&mut c, packet, &state);
    policy(&mut c, packet, cp.as_ref());
    c.0
}

/// The record and the request are the ones logged with the decision.
fn record(c: &mut Checks, packet: &Packet, state: &DecisionState) {
    let id = &packet.decision_id;
    let mut wrong = Vec::new();
    if packet.record_hash != state.record_hash {
        wrong.push(format!(
            "record_hash {} is not the logged {}",
            packet.record_hash, state.record_hash
        ));
    }
    if packet.record.hash() != packet.record_hash {
        wrong.push("the record does not hash to record_hash".into());
    }
    if packet.record.decision_id != *id {
        wrong.push(format!("the record is about {}", packet.record.decision_id));
    }
    if packet.record.action_hash != state.action_hash {
        wrong.push("the record's action_hash is not the logged one".into());
    }
    c.all(
        "record",
        wrong,
        "the record hashes to the record_hash its decision entry logged",
    );
    if let Some(r) = &packet.request {
        let hash = gatehouse_core::action_hash(&r.tool_name, &r.subject, &r.payload);
        let bound = hash == packet.record.action_hash
            && r.workflow_name == packet.record.workflow
            && r.subject == packet.record.subject;
        c.add(
            "request",
            bound,
            if bound {
                "the request's action hashes to the record's action_hash".to_string()
            } else {
                format!("the request's action hashes to {hash}, not the record's")
            },
        );
    }
}

/// The token's claims hash to what its entry logged, and name this
/// decision, its action and the logged expiry.
fn token(c: &mut Checks, packet: &Packet, state: &DecisionState) {
    let logged = state.token.as_ref().map(|t| &t.item);
    let Some(shown) = &packet.token else {
        let ok = logged.is_none_or(|t| t.claims_hash.is_none());
        c.add(
            "token",
            ok,
            if ok {
                "no token claims are shown (none is bound by the log)"
            } else {
                "a token was logged with its claims' hash, but the packet shows no token"
            },
        );
        return;
    };
    let Some(t) = logged else {
        c.add(
            "token",
            false,
            "the packet shows a token no log entry records",
        );
        return;
    };
    let claim = |k: &str| shown.claims.get(k).cloned().unwrap_or(Value::Null);
    let mut wrong = Vec::new();
    match &t.claims_hash {
        Some(h) if *h == claims_hash(&shown.claims) => {}
        Some(_) => wrong.push("the claims do not hash to the logged claims hash".to_string()),
        None => wrong.push(
            "its entry was logged before claims were bound, so the claims cannot be verified"
                .into(),
        ),
    }
    if shown.kid != t.kid {
        wrong.push(format!("kid {} is not the logged {}", shown.kid, t.kid));
    }
    if claim("jti").as_str() != Some(t.jti.as_str()) {
        wrong.push(format!("jti is not the logged {}", t.jti));
    }
    if claim("exp").as_i64() != unix(&t.exp) {
        wrong.push(format!("exp is not the logged expiry {}", t.exp));
    }
    if claim("sub").as_str() != Some(packet.decision_id.as_str()) {
        wrong.push("sub does not name this decision".into());
    }
    if claim("dec").as_str() != Some(state.leaf_hash.as_str()) {
        wrong.push("dec is not the leaf hash of the decision's entry".into());
    }
    if claim("act").as_str() != Some(state.approved_action_hash.as_str()) {
        wrong.push("act is not the approved action's hash".into());
    }
    c.all(
        "token",
        wrong,
        format!(
            "the token's claims hash to what log entry {} recorded and name this decision, its action and expiry",
            state.token.as_ref().map_or(0, |t| t.index)
        ),
    );
}

/// Receipts and outcomes, in log order, each equal to its entry.
fn evidence(c: &mut Checks, packet: &Packet, state: &DecisionState) {
    let decided = unix(&state.created_at);
    let mut wrong = Vec::new();
    if packet.executions.len() != state.executions.len() {
        wrong.push(format!(
            "the packet shows {} receipts; the log has {}",
            packet.executions.len(),
            state.executions.len()
        ));
    }
    for (r, l) in packet.executions.iter().zip(&state.executions) {
        let after = matches!((unix(&r.executed_at), decided), (Some(a), Some(d)) if a >= d);
        if r.execution_id != l.item.execution_id || r.hash() != l.item.execution_hash {
            wrong.push(format!(
                "receipt {} is not the one log entry {} recorded",
                r.execution_id, l.index
            ));
        } else if r.decision_id != packet.decision_id || !after {
            wrong.push(format!(
                "receipt {} is for another decision or dated before it",
                r.execution_id
            ));
        }
    }
    c.all(
        "receipts",
        wrong,
        format!(
            "{} receipts, each equal to its log entry",
            state.executions.len()
        ),
    );
    let mut wrong = Vec::new();
    if packet.outcomes.len() != state.outcomes.len() {
        wrong.push(format!(
            "the packet shows {} outcomes; the log has {}",
            packet.outcomes.len(),
            state.outcomes.len()
        ));
    }
    for (o, l) in packet.outcomes.iter().zip(&state.outcomes) {
        if o.outcome_id != l.item.outcome_id
            || o.hash() != l.item.outcome_hash
            || o.decision_id != packet.decision_id
        {
            wrong.push(format!(
                "outcome {} is not the one log entry {} recorded",
                o.outcome_id, l.index
            ));
        }
    }
    c.all(
        "outcomes",
        wrong,
        format!(
            "{} outcomes, each equal to its log entry",
            state.outcomes.len()
        ),
    );
}

/// Each policy text hashes to what the policy version's entry recorded.
fn policy(c: &mut Checks, packet: &Packet, cp: Option<&Verified>) {
    let p = &packet.policy;
    let mut wrong = Vec::new();
    if p.policy_version != packet.record.policy_version {
        wrong.push(format!(
            "policy_version {} is not the record's {}",
            p.policy_version, packet.record.policy_version
        ));
    }
    let recorded = match &p.entry {
        None if p.policies.is_empty() => None,
        None => {
            wrong.push("policy texts are shown without their policy_version entry".into());
            None
        }
        Some(e) => match proven(e, cp).map(|b| LogEntry::parse(&b)) {
            Err(why) => {
                wrong.push(format!("policy entry {}: {why}", e.index));
                None
            }
            Ok(Err(err)) => {
                wrong.push(format!("policy entry {}: {err}", e.index));
                None
            }
            Ok(Ok(entry)) => match entry.event {
                LogEvent::PolicyVersion { policies, .. } if entry.id == p.policy_version => {
                    policies
                }
                _ => {
                    wrong.push(format!(
                        "log entry {} is not the entry of policy version {}",
                        e.index, p.policy_version
                    ));
                    None
                }
            },
        },
    };
    if p.entry.is_some() && recorded.is_none() && wrong.is_empty() {
        wrong.push("the policy version was logged without per-policy hashes".into());
    }
    // The texts shown are those of every policy the record names as
    // evidence for its verdict: none left out, none added.
    if p.entry.is_some() {
        let named: std::collections::BTreeSet<&str> = packet
            .record
            .evidence
            .iter()
            .filter_map(|r| r.policy_id.as_deref())
            .collect();
        let shown: std::collections::BTreeSet<&str> =
            p.policies.iter().map(|t| t.id.as_str()).collect();
        if named != shown {
            wrong.push(format!(
                "the texts shown ({}) are not those of the policies the record names ({})",
                shown.into_iter().collect::<Vec<_>>().join(", "),
                named.into_iter().collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for text in &p.policies {
        let logged = recorded.as_ref().and_then(|r| r.get(&text.id));
        if recorded.is_some() && logged != Some(&text_hash(&text.text)) {
            wrong.push(format!(
                "the text of policy {} is not the one its version recorded",
                text.id
            ));
        }
    }
    c.all(
        "policy",
        wrong,
        format!(
            "{} policy texts, each hashing to what policy version {} recorded",
            p.policies.len(),
            p.policy_version
        ),
    );
}
