//! Building a Decision Packet. The packet states what the log says: its
//! status and reviews are derived from the decision's entries, and every
//! row it shows (record, token claims, receipts, outcomes, review comments)
//! is one the verifier checks against an entry, so an edited row makes the
//! packet fail rather than lie. What the log cannot bind goes in
//! `unverified`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gatehouse_core::{Decision, SubmittedRequest};
use gatehouse_log::checkpoint::Verified;
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_log::packet::{
    AuditChain, ChainEntry, Packet, PacketRequest, PacketReview, PolicyIntelligence, PolicyText,
    TokenSummary, PACKET_VERSION,
};
use gatehouse_log::state::derive;
use gatehouse_log::tree::Op;
use serde_json::{json, Value};

use crate::error::{AppError, AppResult};
use crate::{App, Caller};

/// Where `id` stands among the logged ids; ids the log does not record
/// sort last.
fn log_position(logged: &[&str], id: &str) -> usize {
    logged.iter().position(|l| *l == id).unwrap_or(usize::MAX)
}

fn b64(bytes: &[u8]) -> String {
    STANDARD.encode(bytes)
}

impl App {
    /// Decision Packet v2 for one decision.
    pub async fn packet(&self, caller: &Caller, id: &str) -> AppResult<Packet> {
        let _slot = self.evidence_slot().await;
        self.packet_in_slot(caller, id).await
    }

    /// [`App::packet`] for a caller that holds an evidence slot already.
    pub(crate) async fn packet_in_slot(&self, caller: &Caller, id: &str) -> AppResult<Packet> {
        let d = self.read(caller, id).await?;
        let note =
            self.store.latest_checkpoint().await?.ok_or_else(|| {
                AppError::Internal("no checkpoint although a decision exists".into())
            })?;
        let cp = gatehouse_log::checkpoint::verify(&note, self.store.log_verifier_key())
            .map_err(|e| AppError::Internal(format!("own checkpoint: {e}")))?;
        // Entries logged after the checkpoint was read are left out: the
        // packet is the decision as of its checkpoint.
        let leaves: Vec<(u64, Vec<u8>)> = self
            .store
            .log_entries_for(&d.id)
            .await?
            .into_iter()
            .filter(|(index, _)| *index < cp.size)
            .collect();
        let mut chain = Vec::with_capacity(leaves.len());
        for (index, leaf) in &leaves {
            chain.push(self.chain_entry(*index, leaf, &cp).await?);
        }
        let (state, _) = derive(&d.id, &leaves);
        let state = state.ok_or_else(|| {
            AppError::EvidenceMismatch(format!("no log entry records decision {}", d.id))
        })?;
        let mut unverified = serde_json::Map::new();
        // The rows' reviews, in the order they were logged (a decision
        // recorded before review rules has only `review`).
        let shown_reviews: Vec<&gatehouse_core::Review> = if d.reviews.is_empty() {
            d.review.iter().collect()
        } else {
            d.reviews.iter().collect()
        };
        let reviews = state
            .reviews
            .iter()
            .enumerate()
            .map(|(n, r)| {
                // The row of the same position; the verifier checks the
                // comment against the entry's hash and the amendment
                // against its action hash.
                let row = shown_reviews.get(n);
                PacketReview {
                    index: r.index,
                    decision: r.item.decision,
                    reviewer_key_id: r.item.reviewer.clone(),
                    reviewer_name: r.item.reviewer_name.clone().filter(|n| !n.is_empty()),
                    comment: row.and_then(|row| row.comment.clone()),
                    reviewed_at: r.ts.clone(),
                    person: r.item.person.clone(),
                    groups: r.item.groups.clone(),
                    action_hash: r.item.action_hash.clone(),
                    amended_payload: row.and_then(|row| row.amended_payload.clone()),
                }
            })
            .collect();
        let token = match self.store.get_token(&d.id).await? {
            Some(t) => {
                let summary = TokenSummary {
                    kid: t.kid.clone(),
                    claims: gatehouse_token::unverified_claims(&t.unsigned)
                        .map_err(|e| AppError::Internal(format!("stored token: {e}")))?,
                };
                let bound = state
                    .token
                    .as_ref()
                    .is_some_and(|l| l.item.claims_hash.is_some());
                if bound {
                    Some(summary)
                } else {
                    unverified.insert("token".into(), json!(summary));
                    None
                }
            }
            None => None,
        };
        // Receipts and outcomes in log order, as the verifier compares them;
        // rows the log does not record come last, and fail there.
        let mut executions = self.store.list_executions(&d.id).await?;
        let logged: Vec<&str> = state
            .executions
            .iter()
            .map(|l| l.item.execution_id.as_str())
            .collect();
        executions.sort_by_key(|r| log_position(&logged, &r.execution_id));
        let mut outcomes = self.store.list_outcomes(&d.id).await?;
        let logged: Vec<&str> = state
            .outcomes
            .iter()
            .map(|l| l.item.outcome_id.as_str())
            .collect();
        outcomes.sort_by_key(|o| log_position(&logged, &o.outcome_id));
        let policy = self.policy_intelligence(&d, &cp, &mut unverified).await?;
        let submitted = SubmittedRequest::from(&d);
        unverified.insert("request".into(), json!(submitted));
        unverified.insert("hints".into(), self.hints());
        let packet = Packet {
            packet_version: PACKET_VERSION.into(),
            decision_id: d.id.clone(),
            record: d.record(),
            record_hash: d.record_hash.clone(),
            request: Some(PacketRequest::from(&submitted)),
            status: state.status.as_str().into(),
            reviews,
            approved_action_hash: (state.approved_action_hash != state.action_hash)
                .then(|| state.approved_action_hash.clone()),
            token,
            executions,
            outcomes,
            policy,
            audit_chain: AuditChain {
                checkpoint: note,
                entries: chain,
            },
            unverified: Value::Object(unverified),
            packet_hash: String::new(),
        };
        Ok(packet.seal())
    }

    async fn chain_entry(&self, index: u64, leaf: &[u8], cp: &Verified) -> AppResult<ChainEntry> {
        let proof = self
            .proof(Op::Inclusion {
                index,
                size: cp.size,
            })
            .await?;
        Ok(ChainEntry {
            index,
            leaf: b64(leaf),
            proof: proof.iter().map(|h| b64(&h.0)).collect(),
        })
    }

    /// The texts of the policies behind the verdict, with the entry of
    /// their version that records each text's hash. A version logged
    /// before per-policy hashes existed cannot bind its texts: they go to
    /// `unverified`.
    async fn policy_intelligence(
        &self,
        d: &Decision,
        cp: &Verified,
        unverified: &mut serde_json::Map<String, Value>,
    ) -> AppResult<PolicyIntelligence> {
        let engine = self
            .policies
            .version(self.store.as_ref(), &d.policy_version)
            .await?;
        let mut policies: Vec<PolicyText> = d
            .reasons
            .iter()
            .filter_map(|r| r.policy_id.as_deref())
            .filter_map(|pid| {
                engine.policy_text(pid).map(|t| PolicyText {
                    id: pid.into(),
                    text: t.into(),
                })
            })
            .collect();
        policies.dedup_by(|a, b| a.id == b.id);
        let recorded = self
            .store
            .log_entries_for(&d.policy_version)
            .await?
            .into_iter()
            .rfind(|(index, leaf)| {
                *index < cp.size
                    && LogEntry::parse(leaf).is_ok_and(|e| {
                        matches!(
                            e.event,
                            LogEvent::PolicyVersion {
                                policies: Some(_),
                                ..
                            }
                        )
                    })
            });
        let entry = match recorded {
            Some((index, leaf)) if !policies.is_empty() => {
                Some(self.chain_entry(index, &leaf, cp).await?)
            }
            Some(_) => None,
            None => {
                if !policies.is_empty() {
                    unverified.insert("policies".into(), json!(policies));
                }
                policies = Vec::new();
                None
            }
        };
        Ok(PolicyIntelligence {
            policy_version: d.policy_version.clone(),
            policies,
            entry,
        })
    }

    fn hints(&self) -> Value {
        json!({
            "note": "nothing under unverified is checked: verify with a log key obtained out of band",
            "record_hash": "SHA-256 of the RFC 8785 canonical JSON of record",
            "leaf_hash": "SHA-256(0x00 || leaf bytes), RFC 6962",
            "node_hash": "SHA-256(0x01 || left || right), RFC 6962",
            "checkpoint": "C2SP tlog-checkpoint in a C2SP signed note, Ed25519",
            "log_key_url": "/api/log/key",
            "jwks_url": "/.well-known/jwks.json",
            "token_kid": self.token_kid(),
        })
    }
}
