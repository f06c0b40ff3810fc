//! The server never acts on state the log does not support. Before it says
//! an action may proceed, hands out or redeems a token, or accepts a
//! receipt, it derives the decision's state from its log entries, proves
//! those entries are in the tree of the latest checkpoint it signed, and
//! compares the stored row with them. A row edited behind its back yields
//! an error and a flag, never an approval.
//!
//! Proofs are not repeated needlessly. The log only grows, so an entry
//! proven once stays proven: [`Proven`] remembers, per decision, the
//! newest entry proven and the state derived up to it. Reading an approved
//! decision again compares its row with that state and reads nothing else
//! (its resolution cannot change in the log); a redemption or a receipt
//! reads the entries afresh and proves only those added since.

use std::collections::HashMap;
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

/// Per decision, the state derived from entries already proven, the last
/// of which is `state.last`. Bounded like the key cache: a flood of
/// distinct decisions empties it rather than growing it.
#[derive(Default)]
pub(crate) struct Proven(Mutex<HashMap<String, DecisionState>>);

const PROVEN_CAPACITY: usize = 10_000;

impl Proven {
    fn get(&self, id: &str) -> Option<DecisionState> {
        self.0.lock().ok()?.get(id).cloned()
    }

    fn put(&self, state: &DecisionState) {
        // Only chained decisions: proving their last entry proves every
        // earlier one, which is what a later call relies on.
        if !state.chained {
            return;
        }
        if let Ok(mut map) = self.0.lock() {
            if map.len() >= PROVEN_CAPACITY {
                map.clear();
            }
            map.insert(state.decision_id.clone(), state.clone());
        }
    }
}

/// How current the state must be.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// A state proven earlier will do: enough to tell whether the action
    /// is permitted, which the log never takes back.
    Settled,
    /// Every entry up to now: redemptions and receipts depend on them.
    Current,
}

impl App {
    /// The decision's state as its log entries say, once each entry it
    /// relies on is proven in the latest signed checkpoint.
    pub(crate) async fn logged_state(
        &self,
        id: &str,
        freshness: Freshness,
    ) -> AppResult<Result<DecisionState, String>> {
        let known = self.proven.get(id);
        if let (Some(state), Freshness::Settled) = (&known, freshness) {
            if state.status.permits_action() {
                return Ok(Ok(state.clone()));
            }
        }
        let entries = self.store.log_entries_for(id).await?;
        let (state, problems) = derive(id, &entries);
        let state = match (state, problems.first()) {
            (Some(s), None) => s,
            (_, Some(p)) => return Ok(Err(p.clone())),
            (None, None) => return Ok(Err(format!("no log entry records decision {id}"))),
        };
        // What was proven before needs no second proof, as long as the entry
        // proven last is still there with the same bytes (the chain from it
        // to the newest entry was just checked by `derive`).
        let already = known.as_ref().is_some_and(|k| {
            entries
                .iter()
                .any(|(i, leaf)| *i == k.last.0 && hex::encode(leaf_hash(leaf).0) == k.last.1)
        });
        if already && known.as_ref().map(|k| &k.last) == Some(&state.last) {
            return Ok(Ok(state));
        }
        // The last entry names the one before it, and so on back to the
        // decision: proving it proves the chain. Entries logged before
        // chains existed are each proven.
        let to_prove: Vec<&(u64, Vec<u8>)> = if state.chained {
            entries.last().into_iter().collect()
        } else {
            entries.iter().collect()
        };
        if let Err(problem) = self.prove(&to_prove).await? {
            return Ok(Err(problem));
        }
        self.proven.put(&state);
        Ok(Ok(state))
    }

    /// Proves each entry in a signed checkpoint that covers them all.
    async fn prove(&self, entries: &[&(u64, Vec<u8>)]) -> AppResult<Result<(), String>> {
        let newest = entries.iter().map(|(i, _)| *i).max().unwrap_or(0);
        let cp = self.checkpoint_covering(newest).await?;
        for (index, leaf) in entries {
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
        Ok(Ok(()))
    }

    /// A checkpoint covering entry `index`, its signature checked with this
    /// server's key. The one verified last serves as long as it covers the
    /// entry: any checkpoint of an append-only log proves what it covers,
    /// and every commit writes a new one, so fetching and verifying the
    /// latest each time would cost a signature check per request.
    async fn checkpoint_covering(&self, index: u64) -> AppResult<Verified> {
        if let Ok(cache) = self.checkpoint_cache.0.lock() {
            if let Some((_, cp)) = cache.as_ref().filter(|(_, cp)| cp.size > index) {
                return Ok(cp.clone());
            }
        }
        self.signed_checkpoint().await
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
    pub(crate) async fn supported(
        &self,
        d: &Decision,
        freshness: Freshness,
    ) -> AppResult<DecisionState> {
        let problem = match self.logged_state(&d.id, freshness).await? {
            Ok(state) => {
                let found = decision_row_disagreements(&state, d);
                if found.is_empty() {
                    return Ok(state);
                }
                found.join("; ")
            }
            Err(problem) => problem,
        };
        // A settled state proven earlier may predate facts the row has
        // since gained lawfully (a token issued on the first read after
        // approval): only the log as it is now can refuse the row.
        if freshness == Freshness::Settled {
            return Box::pin(self.supported(d, Freshness::Current)).await;
        }
        Err(self.refuse_unsupported(d, &problem).await)
    }

    /// Flags `d` for owner review (once per reason) and returns the refusal:
    /// a stored fact about it differs from what its log entries say.
    pub(crate) async fn refuse_unsupported(&self, d: &Decision, problem: &str) -> AppError {
        let reason = format!("the stored decision is not supported by the log: {problem}");
        // Flag once per reason: every refused read must not add an entry.
        if d.flag.as_deref() != Some(reason.as_str()) {
            if let Err(e) = self.store.flag_decision(&d.id, &reason, now()).await {
                tracing::error!(decision_id = %d.id, error = %e, "could not flag a decision the log does not support");
            }
            self.events.appended();
        }
        tracing::error!(decision_id = %d.id, %reason, "refused to act on a stored decision");
        AppError::EvidenceMismatch(reason)
    }
}
