//! Evidence: exact replay of a decision, the checks of its Decision Packet
//! (built in `packets`), and the transparency log's checkpoint and proofs.

use gatehouse_core::{Reason, Verdict};
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_log::packet::Check;
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_policy::Clock;
use gatehouse_store::Role;

use crate::error::{AppError, AppResult};
use crate::rows::{disagreements, StoredRows};
use crate::{App, Caller};

/// Which policies a replay evaluates under.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ReplayPolicies {
    /// The exact policy version that made the decision.
    #[default]
    Recorded,
    /// The policies in force now, on the stored request.
    Current,
}

/// What the policies said, then or now.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

/// A stored decision evaluated again.
#[derive(Debug, Clone)]
pub struct Replay {
    pub decision_id: String,
    pub policy_version: String,
    pub replayed_policy_version: String,
    pub original: Verdicts,
    pub replayed: Verdicts,
}

impl Replay {
    pub fn matches(&self) -> bool {
        self.original == self.replayed
    }
}

/// One leaf with its proof of inclusion in a tree of `size`.
pub struct InclusionProof {
    pub index: u64,
    pub size: u64,
    pub leaf: Vec<u8>,
    pub proof: Vec<Hash>,
}

impl App {
    /// Re-evaluates a stored decision: under its own policy version (the
    /// exact replay), or under the policies in force now.
    pub async fn replay(
        &self,
        caller: &Caller,
        id: &str,
        policies: ReplayPolicies,
    ) -> AppResult<Replay> {
        let _slot = self.evidence_slot().await;
        let d = self.read(caller, id).await?;
        let (result, version) = match policies {
            ReplayPolicies::Current => {
                let engine = self.policies.current().clone();
                let clock = Clock::from_datetime(d.created_at.to_offset(self.config.utc_offset));
                (
                    engine.evaluate(&d.request, clock),
                    engine.version().to_string(),
                )
            }
            ReplayPolicies::Recorded => {
                let engine = self
                    .policies
                    .version(self.store.as_ref(), &d.policy_version)
                    .await?;
                (
                    engine.evaluate_context(
                        &d.evaluated_action,
                        &d.request.agent,
                        &d.request.subject,
                        d.context.clone(),
                    ),
                    engine.version().to_string(),
                )
            }
        };
        let replayed = match result {
            Ok(eval) => Verdicts {
                verdict: eval.verdict,
                reasons: eval.reasons,
            },
            // The stored input no longer fits the schema: that is a "no".
            Err(e) => Verdicts {
                verdict: Verdict::Reject,
                reasons: vec![Reason {
                    code: "SCHEMA_MISMATCH".into(),
                    policy_id: None,
                    message: e.0,
                }],
            },
        };
        Ok(Replay {
            original: Verdicts {
                verdict: d.verdict,
                reasons: d.reasons.clone(),
            },
            decision_id: d.id,
            policy_version: d.policy_version,
            replayed_policy_version: version,
            replayed,
        })
    }

    /// The packet checks, run on the server with its own log key, and one
    /// more a packet cannot hold: every stored row about the decision
    /// against the state its log entries give.
    pub async fn verify(&self, caller: &Caller, id: &str) -> AppResult<Vec<Check>> {
        let _slot = self.evidence_slot().await;
        let packet = self.packet_in_slot(caller, id).await?;
        let mut checks = gatehouse_log::packet::verify(&packet, self.store.log_verifier_key());
        let entries = self.store.log_entries_for(id).await?;
        let found = match gatehouse_log::state::derive(id, &entries) {
            (Some(state), problems) => {
                let rows = StoredRows::read(self.store.as_ref(), id).await?;
                problems
                    .into_iter()
                    .chain(disagreements(&state, &rows))
                    .collect()
            }
            (None, problems) => problems,
        };
        checks.push(Check {
            name: "stored_rows".into(),
            ok: found.is_empty(),
            detail: if found.is_empty() {
                "every stored row about the decision matches its log entries".into()
            } else {
                found.join("; ")
            },
        });
        Ok(checks)
    }

    /// The newest signed checkpoint. Every stored decision is covered by it,
    /// because each commit that appends to the log also writes one.
    pub async fn checkpoint(&self) -> AppResult<Option<String>> {
        Ok(self.store.latest_checkpoint().await?)
    }

    /// The public key checkpoints are signed with (signed-note format).
    pub fn log_key(&self) -> &str {
        self.store.log_verifier_key()
    }

    /// The leaf at `index` and its audit path to the root of the tree of
    /// `size`. Reviewers, auditors and admins read any leaf; an agent only
    /// the leaves about decisions it asked for (a leaf names its decision's
    /// id, the key that asked, the verdict and the action's hash, which are
    /// other agents' business); executors none.
    pub async fn inclusion_proof(
        &self,
        caller: &Caller,
        index: u64,
        size: u64,
    ) -> AppResult<InclusionProof> {
        let _slot = self.evidence_slot().await;
        self.check_size(size).await?;
        if index >= size {
            return Err(AppError::InvalidArgument(format!(
                "index must be below size ({size})"
            )));
        }
        let proof = self.proof(Op::Inclusion { index, size }).await?;
        let leaf = self
            .store
            .log_leaves(index, 1)
            .await?
            .pop()
            .ok_or_else(|| AppError::Internal(format!("log leaf {index} missing")))?
            .1;
        if !self.may_read_leaf(caller, &leaf).await? {
            return Err(AppError::Forbidden {
                role: caller.role.as_str(),
                action: "read log entries that are not about its own decisions",
            });
        }
        Ok(InclusionProof {
            index,
            size,
            leaf,
            proof,
        })
    }

    async fn may_read_leaf(&self, caller: &Caller, leaf: &[u8]) -> AppResult<bool> {
        match caller.role {
            Role::Reviewer | Role::Auditor | Role::Admin => return Ok(true),
            Role::Executor => return Ok(false),
            Role::Agent => {}
        }
        let Ok(entry) = LogEntry::parse(leaf) else {
            return Ok(false);
        };
        let asked_by = |e: &LogEntry| match &e.event {
            LogEvent::Decision { created_by, .. } => Some(created_by.clone()),
            _ => None,
        };
        let owner = match &entry.event {
            LogEvent::Decision { .. } => asked_by(&entry),
            // An entry chained after a decision: whoever asked for it.
            e if e.is_chained() => self
                .store
                .log_entries_for(&entry.id)
                .await?
                .first()
                .and_then(|(_, first)| LogEntry::parse(first).ok())
                .and_then(|first| asked_by(&first)),
            _ => None,
        };
        Ok(owner.as_deref() == Some(caller.key_id.as_str()))
    }

    /// The RFC 6962 consistency proof from the tree of size `from` to the
    /// tree of size `to`.
    pub async fn consistency_proof(
        &self,
        _caller: &Caller,
        from: u64,
        to: u64,
    ) -> AppResult<Vec<Hash>> {
        let _slot = self.evidence_slot().await;
        self.check_size(to).await?;
        if from == 0 || from > to {
            return Err(AppError::InvalidArgument(format!(
                "from must be between 1 and to ({to})"
            )));
        }
        if from == to {
            return Ok(Vec::new());
        }
        self.proof(Op::Consistency { old: from, new: to }).await
    }

    async fn check_size(&self, size: u64) -> AppResult<()> {
        let current = self.store.log_size().await?;
        if size == 0 || size > current {
            return Err(AppError::InvalidArgument(format!(
                "size must be between 1 and the log size ({current})"
            )));
        }
        Ok(())
    }

    /// Runs a proof operation against the stored hashes.
    pub(crate) async fn proof(&self, op: Op) -> AppResult<Vec<Hash>> {
        let needs = op
            .needs()
            .map_err(|e| AppError::InvalidArgument(e.to_string()))?;
        let hashes = self.store.read_log_hashes(needs).await?;
        match op.run(&hashes).map_err(AppError::internal)? {
            Output::Proof(proof) => Ok(proof),
            _ => Err(AppError::Internal("the operation returned no proof".into())),
        }
    }
}
