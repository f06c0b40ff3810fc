//! `gatehouse log`: the log key, and `verify` and `consistency`, which trust
//! nothing the server wrote except a checkpoint signed by the key the caller
//! trusts (the checks themselves are `gatehouse_app::audit`).

use std::process::ExitCode;

use anyhow::{Context, Result};
use gatehouse_app::audit;
use gatehouse_log::checkpoint::LogSigner;

use crate::cli::LogCommand;
use crate::local::{load_signer, open_store, write_private};

pub async fn run(cmd: LogCommand) -> Result<ExitCode> {
    match cmd {
        LogCommand::Key { storage } => {
            println!("{}", load_signer(&storage)?.verifier_key());
            Ok(ExitCode::SUCCESS)
        }
        LogCommand::Keygen { origin, token, out } => {
            let (secret, public) = if token {
                let (pem, signer) = gatehouse_token::TokenSigner::generate()?;
                (pem, format!("key id: {}", signer.kid()))
            } else {
                let (skey, signer) = LogSigner::generate(&origin)
                    .with_context(|| format!("{origin:?} is not a valid log name"))?;
                (skey, format!("public key: {}", signer.verifier_key()))
            };
            eprintln!("{public}");
            match out {
                Some(path) => {
                    write_private(&path, secret.trim_end())?;
                    eprintln!("wrote {} (mode 0600)", path.display());
                }
                None => println!("{}", secret.trim_end()),
            }
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
            match audit::consistency(store.as_ref(), &old_text, &key).await? {
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
            let audit = audit::verify_log(store.as_ref(), &key).await?;
            if let Some((origin, size)) = &audit.checkpoint {
                println!(
                    "checkpoint: {origin} size {size} signed by {}",
                    key.split('+').next().unwrap_or("")
                );
            }
            let failures = audit.failures;
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

/// `gatehouse verify PACKET --log-key KEY [--json]`: prints every check in
/// plain words and a final verdict; exit 0 only if all pass.
pub fn verify_packet(path: &std::path::Path, log_key: &str, json: bool) -> Result<ExitCode> {
    use gatehouse_log::packet::{conclusion, Check};
    let key = match std::fs::read_to_string(log_key) {
        Ok(text) => text.trim().to_string(),
        Err(_) => log_key.trim().to_string(),
    };
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let checks = match serde_json::from_str::<gatehouse_log::packet::Packet>(&text) {
        Ok(packet) => gatehouse_log::packet::verify(&packet, &key),
        Err(e) => vec![Check {
            name: "packet".into(),
            ok: false,
            detail: format!(
                "not a {} document: {e}",
                gatehouse_log::packet::PACKET_VERSION
            ),
        }],
    };
    let (verified, summary) = conclusion(&checks);
    if json {
        let report = serde_json::json!({
            "verified": verified,
            "summary": summary,
            "checks": checks,
        });
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        for c in &checks {
            println!(
                "{}  {}: {}",
                if c.ok { "ok  " } else { "FAIL" },
                c.name,
                c.detail
            );
        }
        println!("{summary}");
    }
    Ok(if verified {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
