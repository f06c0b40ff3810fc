//! Commands that work on local files or the database directly.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use gatehouse_policy::cases::{parse_cases, run_case};
use gatehouse_policy::{read_policy_dir, Engine, EngineOptions};
use gatehouse_store::{Role, Store};
use gatehouse_store_postgres::PostgresStore;
use gatehouse_store_sqlite::SqliteStore;
use time::OffsetDateTime;

use crate::cli::{KeysCommand, PolicyCommand, StorageArgs};

pub async fn open_store(storage: &StorageArgs) -> Result<Arc<dyn Store>> {
    Ok(match &storage.database_url {
        Some(url) => Arc::new(
            PostgresStore::connect(url)
                .await
                .context("cannot open the PostgreSQL database")?,
        ),
        None => {
            Arc::new(SqliteStore::open(&storage.data).with_context(|| {
                format!("cannot open the database in {}", storage.data.display())
            })?)
        }
    })
}

pub async fn keys(cmd: KeysCommand) -> Result<()> {
    match cmd {
        KeysCommand::Create {
            role,
            name,
            storage,
        } => {
            let role = Role::parse(&role).context("unknown role")?;
            let store = open_store(&storage).await?;
            let name = name.unwrap_or_else(|| role.as_str().to_string());
            let new = gatehouse_server::auth::generate_key(role, &name, OffsetDateTime::now_utc());
            store.create_key(&new.key).await?;
            println!(
                "created {} key {} ({name}); the secret below is shown only once:",
                role.as_str(),
                new.key.id
            );
            println!("{}", new.secret);
        }
        KeysCommand::List { storage } => {
            let store = open_store(&storage).await?;
            println!("{:<28} {:<9} {:<24} STATUS", "ID", "ROLE", "NAME");
            for k in store.list_keys().await? {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<28} {:<9} {:<24} {status}",
                    k.id,
                    k.role.as_str(),
                    k.name
                );
            }
        }
        KeysCommand::Revoke { id, storage } => {
            let store = open_store(&storage).await?;
            if !store.revoke_key(&id, OffsetDateTime::now_utc()).await? {
                bail!("no API key with id {id}");
            }
            println!("revoked {id}; running servers stop accepting it within a few seconds");
        }
    }
    Ok(())
}

pub fn policy(cmd: PolicyCommand) -> Result<ExitCode> {
    match cmd {
        PolicyCommand::Check { dir } => {
            let engine = Engine::compile(read_policy_dir(&dir)?, EngineOptions::default())?;
            println!(
                "ok: {} policies, version {}",
                engine.policy_count(),
                engine.version()
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { dir, cases } => {
            let engine = Engine::compile(read_policy_dir(&dir)?, EngineOptions::default())?;
            let text = std::fs::read_to_string(&cases)
                .with_context(|| format!("cannot read {}", cases.display()))?;
            let cases =
                parse_cases(&text).with_context(|| "cases file is not a JSON array of cases")?;
            let mut failed = 0;
            for case in &cases {
                let result = run_case(&engine, case);
                if result.passed() {
                    println!("ok    {}", result.name);
                } else {
                    failed += 1;
                    println!(
                        "FAIL  {}: expected {}, got {} ({})",
                        result.name, result.expected, result.actual, result.detail
                    );
                }
            }
            println!("{} passed, {failed} failed", cases.len() - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
