//! `gatehouse hooks`: private hooks for no-code tools, managed directly in
//! the database (the admin API offers the same at /api/hooks).

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::cli::StorageArgs;
use crate::local::open_store;
use gatehouse_core::decision::now_unix_millis;

#[derive(Subcommand)]
pub enum HooksCommand {
    /// Create a hook: prints its URL and a secret shown only once. The
    /// hook may ask for decisions about one workflow's listed actions and
    /// nothing else.
    Create {
        /// 1 to 64 letters, digits, '-', '_' or '.'; unique.
        #[arg(long)]
        name: String,
        /// The only workflow (the Decide API's context.workflow) it may ask for.
        #[arg(long)]
        workflow: String,
        /// The only actions (context.requested_action) it may ask for,
        /// separated by commas.
        #[arg(long, value_delimiter = ',', required = true)]
        actions: Vec<String>,
        /// The address tools reach this server at, for the printed URL.
        #[arg(
            long,
            env = "GATEHOUSE_PUBLIC_URL",
            default_value = "http://127.0.0.1:8080"
        )]
        url: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List hooks (never their secrets).
    List {
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke a hook by id: running servers refuse it from its next call.
    Revoke {
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

pub async fn run(cmd: HooksCommand) -> Result<()> {
    match cmd {
        HooksCommand::Create {
            name,
            workflow,
            actions,
            url,
            storage,
        } => {
            let new = gatehouse_app::hooks::new_hook(
                &name,
                &workflow,
                &actions,
                "cli",
                now_unix_millis(),
            )?;
            let store = open_store(&storage).await?;
            match store.create_hook(&new.hook).await {
                Ok(()) => {}
                Err(gatehouse_store::StoreError::Duplicate) => {
                    bail!("a hook named {name:?} exists already; revoke it or choose another name")
                }
                Err(e) => return Err(e).context("cannot store the hook"),
            }
            println!(
                "created hook {} ({name}) for workflow {workflow:?}, actions {}",
                new.hook.id,
                actions.join(", ")
            );
            println!(
                "hook URL: {}/hooks/{}",
                url.trim_end_matches('/'),
                new.hook.id
            );
            println!("send the secret below in X-Gatehouse-Hook-Secret (or sign bodies with it); it is shown only once:");
            println!("{}", new.secret);
        }
        HooksCommand::List { json, storage } => {
            let store = open_store(&storage).await?;
            let hooks = store.list_hooks().await?;
            if json {
                for h in &hooks {
                    println!(
                        "{}",
                        serde_json::to_string(&gatehouse_api::hooks::HookView::from(h))?
                    );
                }
                return Ok(());
            }
            println!(
                "{:<32} {:<24} {:<8} {:<28} ACTIONS",
                "ID", "NAME", "STATUS", "WORKFLOW"
            );
            for h in &hooks {
                let status = if h.revoked_at_ms.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<32} {:<24} {status:<8} {:<28} {}",
                    h.id,
                    h.name,
                    h.workflow,
                    h.actions.join(",")
                );
            }
        }
        HooksCommand::Revoke { id, storage } => {
            let store = open_store(&storage).await?;
            if !store.revoke_hook(&id, now_unix_millis()).await? {
                bail!("no hook with id {id}");
            }
            println!("revoked hook {id}; servers refuse it from its next call");
        }
    }
    Ok(())
}
