//! `gatehouse log`: the log key, and `verify`, which trusts nothing the
//! server wrote except a checkpoint signed by the key the caller trusts.

use std::process::ExitCode;

use anyhow::{Context, Result};
use gatehouse_log::checkpoint::{self, LogSigner};
use gatehouse_log::entry::LogEntry;
use gatehouse_log::proof::leaf_hash;
use gatehouse_log::tree::{Op, Output};
use gatehouse_log::Hash;
use gatehouse_store::{DecisionQuery, Store};

use crate::cli::LogCommand;
use crate::local::{load_signer, open_store};

pub async fn run(cmd: LogCommand) -> Result<ExitCode> {
    match cmd {
        LogCommand::Key { storage } => {
            println!("{}", load_signer(&storage)?.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Keygen { token: true, .. } => {
            let (pem, signer) = gatehouse_token::TokenSigner::generate()?;
            eprintln!("key id: {}", signer.kid());
            print!("{pem}");
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Keygen { origin, .. } => {
            let (skey, signer) = LogSigner::generate(&origin)
                .with_context(|| format!("{origin:?} is not a valid log name"))?;
            eprintln!("public key: {}", signer.verifier_key());
            println!("{skey}");
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Consistency {
            old_checkpoint,
            storage,
            log_key,
        } => {
            let store = open_store(&storage).await?;
            let key = log_key.unwrap_or_else(|| store.log_verifier_key().to_string());
            let old_text = std::fs::read_to_string(&old_checkpoint)
                .with_context(|| format!("cannot read {}", old_checkpoint.display()))?;
            match consistency(store.as_ref(), &old_text, &key).await? {
                Ok(detail) => {
                    println!("ok: {detail}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(problem) => {
                    println!("FAIL  {problem}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        LogCommand::Verify { storage, log_key } => {
            let store = open_store(&storage).await?;
            let key = match log_key {
                Some(k) => k,
                None => store.log_verifier_key().to_string(),
            };
            let failures = verify(store.as_ref(), &key).await?;
            if failures.is_empty() {
                println!("ok: the log and every decision check out");
                Ok(ExitCode::SUCCESS)
            } else {
                for f in &failures {
                    println!("FAIL  {f}");
                }
                Ok(ExitCode::from(1))
            }
        }
    }
}

/// `gatehouse verify PACKET --log-key KEY`: prints every check; exit 0 only
/// if all pass.
pub fn verify_packet(path: &std::path::Path, log_key: &str) -> Result<ExitCode> {
    let key = match std::fs::read_to_string(log_key) {
        Ok(text) => text.trim().to_string(),
        Err(_) => log_key.trim().to_string(),
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let packet: gatehouse_log::packet::Packet = match serde_json::from_str(&text) {
        Ok(p) => p,
        Err(e) => {
            println!("FAIL  packet: not a decision-packet/v1 document ({e})");
            return Ok(ExitCode::from(1));
        }
    };
    let checks = gatehouse_log::packet::verify(&packet, &key);
    for c in &checks {
        println!(
            "{}  {}: {}",
            if c.ok { "ok  " } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    println!("{} passed, {failed} failed", checks.len() - failed);
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Checks both checkpoints' signatures, then a consistency proof built from
/// the stored hashes. Ok(detail) or Err(problem).
pub async fn consistency(
    store: &dyn Store,
    old_note: &str,
    key: &str,
) -> Result<std::result::Result<String, String>> {
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
        let hashes = store.read_log_hashes(op.needs()?).await?;
        let Output::Proof(p) = op.run(&hashes)? else {
            unreachable!("consistency returns a proof")
        };
        p
    };
    Ok(
        match gatehouse_log::proof::verify_consistency(&proof, old.size, old.root, new.size, new.root) {
            Ok(()) => Ok(format!("today's log (size {}) extends the saved checkpoint (size {})", new.size, old.size)),
            Err(_) => Err(format!(
                "today's log (size {}) does not extend the saved checkpoint (size {}): the log was rewritten or forked",
                new.size, old.size
            )),
        },
    )
}

/// Returns one line per problem found; empty means everything verified.
pub async fn verify(store: &dyn Store, key: &str) -> Result<Vec<String>> {
    let mut failures = Vec::new();
    let Some(note) = store.latest_checkpoint().await? else {
        let size = store.log_size().await?;
        if size > 0 {
            failures.push(format!(
                "the log has {size} entries but no signed checkpoint"
            ));
        }
        return Ok(failures);
    };
    let cp = match checkpoint::verify(&note, key) {
        Ok(cp) => cp,
        Err(e) => return Ok(vec![format!("latest checkpoint: {e}")]),
    };
    println!(
        "checkpoint: {} size {} signed by {}",
        cp.origin,
        cp.size,
        key.split('+').next().unwrap_or("")
    );

    // Rebuild the tree from the leaves alone; keep every leaf hash to name
    // the entry that differs from what the log's stored hashes say.
    let mut stored: Vec<Hash> = Vec::new();
    let mut leaves: Vec<Vec<u8>> = Vec::new();
    let mut next = 0u64;
    while next < cp.size {
        let page = store.log_leaves(next, 10_000).await?;
        if page.is_empty() {
            failures.push(format!("log entries {next}..{} are missing", cp.size));
            return Ok(failures);
        }
        for (idx, bytes) in page {
            if idx != next {
                failures.push(format!(
                    "log entry {next} is missing (next stored entry is {idx})"
                ));
                return Ok(failures);
            }
            if idx >= cp.size {
                break;
            }
            let op = Op::Append {
                n: idx,
                leaf: leaf_hash(&bytes),
            };
            let needs = op.needs()?;
            let fetched = needs.iter().map(|&i| (i, stored[i as usize])).collect();
            let Output::Stored(new) = op.run(&fetched)? else {
                unreachable!("append returns hashes")
            };
            stored.extend(new.into_iter().map(|(_, h)| h));
            leaves.push(bytes);
            next += 1;
        }
    }
    let op = Op::Root { size: cp.size };
    let fetched = op
        .needs()?
        .iter()
        .map(|&i| (i, stored[i as usize]))
        .collect();
    let Output::Root(root) = op.run(&fetched)? else {
        unreachable!("root returns a hash")
    };
    if root.0 != cp.root.0 {
        failures.push("the stored log entries do not produce the signed root".to_string());
        // Name the entries whose bytes no longer match the stored leaf hash.
        let indexes: Vec<u64> = (0..cp.size).map(tlog_leaf_index).collect();
        for chunk in indexes.chunks(10_000) {
            let recorded = store
                .read_log_hashes(chunk.to_vec())
                .await
                .unwrap_or_default();
            for &si in chunk {
                if recorded.get(&si).map(|h| h.0) != Some(stored[si as usize].0) {
                    failures.push(format!(
                        "log entry {} was changed or its hash was",
                        leaf_number(si)
                    ));
                }
            }
        }
    }

    // Every decision must still be exactly what its log entry says.
    let mut before = None;
    loop {
        let page = store
            .list_decisions(&DecisionQuery {
                before: before.clone(),
                limit: 500,
                ..Default::default()
            })
            .await?;
        let Some(last) = page.last() else { break };
        before = Some(last.id.clone());
        for d in &page {
            if !d.record_hash_matches() {
                failures.push(format!(
                    "decision {}: stored fields no longer match its record_hash",
                    d.id
                ));
            }
            match d.log_index {
                Some(i) if i < cp.size => {
                    if leaves[i as usize] != LogEntry::decision(d).to_bytes() {
                        failures.push(format!(
                            "decision {}: does not match its log entry {i}",
                            d.id
                        ));
                    }
                }
                Some(_) => {} // logged after the checkpoint was read
                None => failures.push(format!("decision {} has no log entry", d.id)),
            }
        }
    }
    Ok(failures)
}

/// Stored-hash index of leaf `i` (the leaf level of tlog's layout).
fn tlog_leaf_index(i: u64) -> u64 {
    tlog_tiles::tlog::stored_hash_index(0, i)
}

fn leaf_number(stored_index: u64) -> u64 {
    tlog_tiles::tlog::split_stored_hash_index(stored_index).1
}
