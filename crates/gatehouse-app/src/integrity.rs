//! The server never acts on state the log does not support. Before it says
//! an action may proceed, hands out or redeems a token, or accepts a
//! receipt, it derives the decision's state from its log entries, proves
//! those entries are in the tree of the latest checkpoint it signed, and
//! compares the stored row with them. A row edited behind its back yields
//! an error and a flag, never an approval.

use std::sync::Mutex;

use gatehouse_core::Decision;
use gatehouse_log::checkpoint::{self, Verified};
use gatehouse_log::proof::{leaf_hash, verify_inclusion};
use gatehouse_log::state::{derive, DecisionState};
use gatehouse_log::tree::{Op, Output};

use crate::error::{AppError, AppResult};
use crate::rows::decision_row_disagreements;
use crate::{now, App};

/// The latest checkpoint this server verified, by its note's text, so
/// each note's signature is checked once.
#[derive(Default)]
pub(crate) struct VerifiedCheckpoint(Mutex<Option<(String, Verified)>>);

impl App {
    /// The decision's state as its log entries say, once each entry it
    /// relies on is proven in the latest signed checkpoint.
    pub(crate) async fn logged_state(&self, id: &str) -> AppResult<Result<DecisionState, String>> {
        let entries = self.store.log_entries_for(id).await?;
        let (state, problems) = derive(id, &entries);
        let state = match (state, problems.first()) {
            (Some(s), None) => s,
            (_, Some(p)) => return Ok(Err(p.clone())),
            (None, None) => return Ok(Err(format!("no log entry records decision {id}"))),
        };
        let cp = self.signed_checkpoint().await?;
        // The last entry names the one before it, and so on back to the
        // decision: proving it proves the chain. Entries logged before
        // chains existed are each proven.
        let to_prove: Vec<&(u64, Vec<u8>)> = if state.chained {
            entries.last().into_iter().collect()
        } else {
            entries.iter().collect()
        };
        for (index, leaf) in to_prove {
            if *index >= cp.size {
                return Ok(Err(format!(
                    "log entry {index} is not covered by the latest signed checkpoint"
                )));
            }
            let op = Op::Inclusion {
                index: *index,
                size: cp.size,
            };
            let hashes = self
                .store
                .read_log_hashes(op.needs().map_err(AppError::internal)?)
                .await?;
            let proven = match op.run(&hashes) {
                Ok(Output::Proof(proof)) => {
                    verify_inclusion(&proof, cp.size, cp.root, *index, leaf_hash(leaf)).is_ok()
                }
                _ => false,
            };
            if !proven {
                return Ok(Err(format!(
                    "log entry {index} is not the entry the signed checkpoint covers"
                )));
            }
        }
        Ok(Ok(state))
    }

    /// The latest checkpoint, its signature checked with this server's key.
    async fn signed_checkpoint(&self) -> AppResult<Verified> {
        let note = self.store.latest_checkpoint().await?.ok_or_else(|| {
            AppError::Internal("no signed checkpoint although decisions exist".into())
        })?;
        if let Ok(cache) = self.checkpoint_cache.0.lock() {
            if let Some((text, cp)) = cache.as_ref() {
                if *text == note {
                    return Ok(cp.clone());
                }
            }
        }
        let cp = checkpoint::verify(&note, self.store.log_verifier_key()).map_err(|e| {
            AppError::Internal(format!("the latest checkpoint does not verify: {e}"))
        })?;
        if let Ok(mut cache) = self.checkpoint_cache.0.lock() {
            *cache = Some((note, cp.clone()));
        }
        Ok(cp)
    }

    /// The log's state of `d`, which must be the state its row claims;
    /// otherwise the decision is flagged and the caller refused.
    pub(crate) async fn supported(&self, d: &Decision) -> AppResult<DecisionState> {
        let problem = match self.logged_state(&d.id).await? {
            Ok(state) => {
                let found = decision_row_disagreements(&state, d);
                if found.is_empty() {
                    return Ok(state);
                }
                found.join("; ")
            }
            Err(problem) => problem,
        };
        let reason = format!("the stored decision is not supported by the log: {problem}");
        // Flag once per reason: every refused read must not add an entry.
        if d.flag.as_deref() != Some(reason.as_str()) {
            if let Err(e) = self.store.flag_decision(&d.id, &reason, now()).await {
                tracing::error!(decision_id = %d.id, error = %e, "could not flag a decision the log does not support");
            }
            self.events.appended();
        }
        tracing::error!(decision_id = %d.id, %reason, "refused to act on a stored decision");
        Err(AppError::EvidenceMismatch(reason))
    }
}
