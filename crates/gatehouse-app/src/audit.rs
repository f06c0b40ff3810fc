//! Audit of the whole log, trusting nothing the database says except a
//! checkpoint signed by a key the auditor supplies: the tree is rebuilt
//! from the leaf bytes, every decision's state is derived from its entries,
//! and every row about it is compared with that state.
//! `gatehouse log verify` and `gatehouse log consistency` print these.

use std::collections::BTreeMap;

use gatehouse_log::checkpoint;
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::state::derive;
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_store::{DecisionQuery, Store};

use crate::error::{AppError, AppResult};
use crate::rows::{disagreements, StoredRows};

/// Leaves and decisions are read in pages of this many.
const PAGE: u32 = 10_000;
const DECISION_PAGE: u32 = 500;

/// The outcome of [`verify_log`].
#[derive(Debug, Default)]
pub struct LogAudit {
    /// The checkpoint checked against: origin and size, when there is one.
    pub checkpoint: Option<(String, u64)>,
    /// One line per problem found; empty means everything verified.
    pub failures: Vec<String>,
}

fn tree_error(e: impl std::fmt::Display) -> AppError {
    AppError::Internal(format!("log tree: {e}"))
}

/// Checks a saved checkpoint and the latest one with `key`, then proves
/// that today's log extends the saved one. Ok(detail) or Err(problem).
pub async fn consistency(
    store: &dyn Store,
    old_note: &str,
    key: &str,
) -> AppResult<Result<String, String>> {
    let old = match checkpoint::verify(old_note, key) {
        Ok(cp) => cp,
        Err(e) => return Ok(Err(format!("saved checkpoint: {e}"))),
    };
    let Some(note) = store.latest_checkpoint().await? else {
        return Ok(Err("the log has no checkpoint".into()));
    };
    let new = match checkpoint::verify(&note, key) {
        Ok(cp) => cp,
        Err(e) => return Ok(Err(format!("latest checkpoint: {e}"))),
    };
    if old.size > new.size {
        return Ok(Err(format!(
            "the saved checkpoint (size {}) is larger than today's log (size {}): the log was truncated or forked",
            old.size, new.size
        )));
    }
    let proof = if old.size == new.size {
        Vec::new()
    } else {
        let op = Op::Consistency {
            old: old.size,
            new: new.size,
        };
        let hashes = store
            .read_log_hashes(op.needs().map_err(tree_error)?)
            .await?;
        match op.run(&hashes).map_err(tree_error)? {
            Output::Proof(p) => p,
            _ => return Err(tree_error("a consistency operation returned no proof")),
        }
    };
    let verified =
        gatehouse_log::proof::verify_consistency(&proof, old.size, old.root, new.size, new.root);
    Ok(match verified {
        Ok(()) => Ok(format!(
            "today's log (size {}) extends the saved checkpoint (size {})",
            new.size, old.size
        )),
        Err(_) => Err(format!(
            "today's log (size {}) does not extend the saved checkpoint (size {}): the log was rewritten or forked",
            new.size, old.size
        )),
    })
}

/// Rebuilds the tree from the stored leaves, checks it against the latest
/// checkpoint signed with `key`, and checks every decision against its
/// log entry.
pub async fn verify_log(store: &dyn Store, key: &str) -> AppResult<LogAudit> {
    let mut audit = LogAudit::default();
    let Some(note) = store.latest_checkpoint().await? else {
        let size = store.log_size().await?;
        if size > 0 {
            audit.failures.push(format!(
                "the log has {size} entries but no signed checkpoint"
            ));
        }
        return Ok(audit);
    };
    let cp = match checkpoint::verify(&note, key) {
        Ok(cp) => cp,
        Err(e) => {
            audit.failures.push(format!("latest checkpoint: {e}"));
            return Ok(audit);
        }
    };
    audit.checkpoint = Some((cp.origin.clone(), cp.size));

    // Rebuild the tree from the leaves alone; keep every stored hash to name
    // the entry that differs from what the log's stored hashes say.
    let mut stored: Vec<Hash> = Vec::new();
    let mut leaves: Vec<Vec<u8>> = Vec::new();
    let mut next = 0u64;
    while next < cp.size {
        let page = store.log_leaves(next, PAGE).await?;
        if page.is_empty() {
            audit
                .failures
                .push(format!("log entries {next}..{} are missing", cp.size));
            return Ok(audit);
        }
        for (idx, bytes) in page {
            if idx != next {
                audit.failures.push(format!(
                    "log entry {next} is missing (next stored entry is {idx})"
                ));
                return Ok(audit);
            }
            if idx >= cp.size {
                break;
            }
            let op = Op::Append {
                n: idx,
                leaf: leaf_hash(&bytes),
            };
            let fetched = op
                .needs()
                .map_err(tree_error)?
                .iter()
                .map(|&i| (i, stored[i as usize]))
                .collect();
            let Output::Stored(new) = op.run(&fetched).map_err(tree_error)? else {
                return Err(tree_error("an append returned no hashes"));
            };
            stored.extend(new.into_iter().map(|(_, h)| h));
            leaves.push(bytes);
            next += 1;
        }
    }
    let op = Op::Root { size: cp.size };
    let fetched = op
        .needs()
        .map_err(tree_error)?
        .iter()
        .map(|&i| (i, stored[i as usize]))
        .collect();
    let Output::Root(root) = op.run(&fetched).map_err(tree_error)? else {
        return Err(tree_error("a root operation returned no hash"));
    };
    if root.0 != cp.root.0 {
        audit
            .failures
            .push("the stored log entries do not produce the signed root".to_string());
        name_changed_leaves(store, cp.size, &stored, &mut audit.failures).await;
    }
    check_decisions(store, cp.size, &leaves, &mut audit.failures).await?;
    Ok(audit)
}

/// Names the entries whose bytes no longer match their stored leaf hash.
async fn name_changed_leaves(
    store: &dyn Store,
    size: u64,
    rebuilt: &[Hash],
    out: &mut Vec<String>,
) {
    let indexes: Vec<u64> = (0..size)
        .map(|i| tlog_tiles::tlog::stored_hash_index(0, i))
        .collect();
    for chunk in indexes.chunks(PAGE as usize) {
        let recorded = store
            .read_log_hashes(chunk.to_vec())
            .await
            .unwrap_or_default();
        for &si in chunk {
            if recorded.get(&si).map(|h| h.0) != Some(rebuilt[si as usize].0) {
                let leaf = tlog_tiles::tlog::split_stored_hash_index(si).1;
                out.push(format!("log entry {leaf} was changed or its hash was"));
            }
        }
    }
}

/// Every decision's rows must be what its log entries say, and every row
/// must have its entries: the rows are caches of the log.
async fn check_decisions(
    store: &dyn Store,
    size: u64,
    leaves: &[Vec<u8>],
    out: &mut Vec<String>,
) -> AppResult<()> {
    let mut about: BTreeMap<String, Vec<(u64, Vec<u8>)>> = BTreeMap::new();
    for (index, bytes) in leaves.iter().enumerate() {
        match LogEntry::parse(bytes) {
            Err(e) => out.push(format!("log entry {index}: {e}")),
            Ok(entry) if about_a_decision(&entry.event) => about
                .entry(entry.id)
                .or_default()
                .push((index as u64, bytes.clone())),
            Ok(_) => {}
        }
    }
    for (id, entries) in &about {
        let (state, problems) = derive(id, entries);
        out.extend(problems.into_iter().map(|p| format!("decision {id}: {p}")));
        let Some(state) = state else { continue };
        let rows = StoredRows::read(store, id).await?;
        let mut found = disagreements(&state, &rows);
        if !found.is_empty() {
            // Entries the checkpoint does not cover yet (the server kept
            // working while this audit ran) explain newer rows: compare
            // with every entry instead, and report only what remains.
            let all = store.log_entries_for(id).await?;
            if all.iter().any(|(i, _)| *i >= size) {
                if let (Some(newer), _) = derive(id, &all) {
                    found = disagreements(&newer, &rows);
                }
            }
        }
        out.extend(found);
    }
    let mut before = None;
    loop {
        let page = store
            .list_decisions(&DecisionQuery {
                before: before.clone(),
                limit: DECISION_PAGE,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else {
            return Ok(());
        };
        before = Some(last.id.clone());
        for d in &page {
            if !d.record_hash_matches() {
                out.push(format!(
                    "decision {}: stored fields no longer match its record_hash",
                    d.id
                ));
            }
            match d.log_index {
                Some(i) if i < size => {
                    if leaves[i as usize] != LogEntry::decision(d).to_bytes() {
                        out.push(format!(
                            "decision {}: does not match its log entry {i}",
                            d.id
                        ));
                    }
                    if !about.contains_key(&d.id) {
                        out.push(format!("decision {}: no log entry records it", d.id));
                    }
                }
                Some(_) => {} // logged after the checkpoint was read
                None => out.push(format!("decision {} has no log entry", d.id)),
            }
        }
    }
}

/// Entries about a decision: the decision's own and every entry chained
/// after it.
fn about_a_decision(event: &LogEvent) -> bool {
    matches!(event, LogEvent::Decision { .. }) || event.is_chained()
}
