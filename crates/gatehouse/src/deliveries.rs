//! `gatehouse deliveries`: the outbox, read and retried in the database
//! directly (like `gatehouse users`); a running server picks a retry up
//! within its poll interval.

use anyhow::{bail, Result};
use clap::Subcommand;
use gatehouse_core::decision::{from_unix_millis, now_unix_millis, rfc3339};
use gatehouse_store::outbox::{Delivery, DeliveryQuery, DeliveryStatus};
use serde_json::json;

use crate::cli::StorageArgs;
use crate::local::open_store;

#[derive(Subcommand)]
pub enum DeliveriesCommand {
    /// List deliveries, newest first.
    List {
        /// Only dead letters (given up after the last attempt or too old).
        #[arg(long)]
        failed: bool,
        /// Only pending ones (not yet delivered, retrying).
        #[arg(long, conflicts_with = "failed")]
        pending: bool,
        /// Only those about one decision.
        #[arg(long)]
        decision: Option<String>,
        /// Only deliveries older than this one: the next page after a
        /// list whose last line was that delivery.
        #[arg(long, value_name = "DELIVERY_ID")]
        before: Option<String>,
        /// At most this many (1 to 500).
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// One JSON object per line instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Show a delivery and every attempt.
    Show {
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Make a dead (or pending) delivery due now, with a fresh count of
    /// attempts; the server sends it within a second.
    Retry {
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

fn when(ms: Option<i64>) -> String {
    ms.map(|ms| rfc3339(from_unix_millis(ms)))
        .unwrap_or_else(|| "-".into())
}

fn as_json(d: &Delivery) -> serde_json::Value {
    json!({
        "id": d.new.id,
        "decision_id": d.new.decision_id,
        "event": d.new.event_type,
        "channel": d.new.channel,
        "target": d.new.target,
        "status": d.status,
        "attempts": d.attempts,
        "next_attempt_at": (d.status == DeliveryStatus::Pending).then(|| when(Some(d.next_attempt_at_ms))),
        "last_attempt_at": d.last_attempt_at_ms.map(|ms| when(Some(ms))),
        "last_status_code": d.last_status_code,
        "last_error": d.last_error,
        "delivered_at": d.delivered_at_ms.map(|ms| when(Some(ms))),
    })
}

pub async fn run(cmd: DeliveriesCommand) -> Result<()> {
    match cmd {
        DeliveriesCommand::List {
            failed,
            pending,
            decision,
            before,
            limit,
            json,
            storage,
        } => {
            let max = gatehouse_app::deliveries::MAX_DELIVERY_PAGE;
            if !(1..=max).contains(&limit) {
                bail!("--limit must be between 1 and {max}");
            }
            let store = open_store(&storage).await?;
            let status = if failed {
                Some(DeliveryStatus::Dead)
            } else if pending {
                Some(DeliveryStatus::Pending)
            } else {
                None
            };
            let list = store
                .list_deliveries(&DeliveryQuery {
                    decision_id: decision,
                    status,
                    before,
                    limit,
                })
                .await?;
            if json {
                for d in &list {
                    println!("{}", as_json(d));
                }
                return Ok(());
            }
            if list.is_empty() {
                println!("no deliveries");
                return Ok(());
            }
            println!(
                "{:<30}  {:<9}  {:<8}  {:<23}  {:>3}  {:<30}  LAST ERROR",
                "ID", "STATUS", "CHANNEL", "EVENT", "TRY", "DECISION"
            );
            for d in &list {
                println!(
                    "{:<30}  {:<9}  {:<8}  {:<23}  {:>3}  {:<30}  {}",
                    d.new.id,
                    d.status.as_str(),
                    d.new.channel,
                    d.new.event_type,
                    d.attempts,
                    d.new.decision_id,
                    d.last_error.as_deref().unwrap_or("")
                );
            }
            // A full page may have more behind it; say how to ask for it
            // (on stderr, so that scripts reading the table are unaffected).
            if list.len() == limit as usize {
                if let Some(last) = list.last() {
                    eprintln!("more may follow: add --before {}", last.new.id);
                }
            }
        }
        DeliveriesCommand::Show { id, storage } => {
            let store = open_store(&storage).await?;
            let Some(d) = store.get_delivery(&id).await? else {
                bail!("no delivery {id:?}");
            };
            let attempts = store.delivery_attempts(&id).await?;
            let mut shown = as_json(&d);
            shown["attempts_made"] = attempts
                .iter()
                .map(|a| {
                    json!({"attempt": a.attempt, "at": when(Some(a.at_ms)), "duration_ms": a.duration_ms,
                           "status_code": a.status_code, "error": a.error})
                })
                .collect();
            println!("{}", serde_json::to_string_pretty(&shown)?);
        }
        DeliveriesCommand::Retry { id, storage } => {
            let store = open_store(&storage).await?;
            let Some(d) = store.get_delivery(&id).await? else {
                bail!("no delivery {id:?}");
            };
            let now = now_unix_millis();
            if !store.retry_delivery(&id, now).await? {
                bail!(
                    "delivery {id} was {}; only pending and dead deliveries can be retried",
                    d.status.as_str()
                );
            }
            println!(
                "delivery {id} is due again ({} to {})",
                d.new.event_type, d.new.target
            );
        }
    }
    Ok(())
}
