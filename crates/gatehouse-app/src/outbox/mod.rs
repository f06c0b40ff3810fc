//! The outbox's two loops: the fan-out turns log entries into deliveries
//! (in one transaction with the cursor, see `gatehouse_store::outbox`),
//! and the dispatcher claims due deliveries and hands each to its
//! channel, retrying with exponential backoff and jitter until it is
//! delivered or dead. Channels (webhooks, callbacks, Slack, email) are
//! adapters that implement [`Channel`]; this module knows no transport.
//!
//! Neither loop is on the decide path: a commit only wakes the fan-out,
//! and a slow or failing receiver holds one dispatcher slot, never a
//! request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use gatehouse_core::{ids, Decision};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::outbox::{Delivery, DeliveryAttempt, DeliveryNext, NewDelivery};
use rand::Rng;
use tokio::sync::{mpsc, Semaphore};

use crate::events::DomainEvent;
use crate::notice::event_type;
use crate::throttle::Throttle;
use crate::App;
use gatehouse_core::decision::now_unix_millis;

mod fan_out;

/// Leaves fanned out per transaction.
const FAN_OUT_PAGE: u32 = 200;
/// How long finished attempts are gathered before they are recorded.
const RECORD_GATHER: Duration = Duration::from_millis(20);
/// An attempt and what follows it.
type Finished = (DeliveryAttempt, DeliveryNext);

/// How long the fan-out waits after a commit wakes it, so that a busy
/// server's commits are read in one go rather than one query each.
const FAN_OUT_GATHER: Duration = Duration::from_millis(20);
/// How long the dispatcher waits after an attempt frees a slot, so that
/// the slots freed meanwhile are filled by one claim.
const CLAIM_GATHER: Duration = Duration::from_millis(5);

/// An event as channels see it when deciding what they owe.
pub struct OutboxEvent<'a> {
    pub log_index: u64,
    /// When it happened (the entry's `ts`, RFC 3339).
    pub at: &'a str,
    pub event_type: &'static str,
    pub event: &'a DomainEvent,
    pub decision: &'a Decision,
}

/// A delivery a channel owes for an event.
pub struct Owed {
    pub target: String,
    pub payload: String,
}

/// How an attempt went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sent {
    Delivered {
        code: Option<u16>,
    },
    Failed {
        code: Option<u16>,
        error: String,
        /// Trying again cannot help (the target is refused, the message
        /// is malformed): dead-letter at once.
        permanent: bool,
    },
}

/// A way of notifying: its name is the `channel` of its deliveries.
#[async_trait]
pub trait Channel: Send + Sync {
    fn name(&self) -> &'static str;

    /// Whether this channel may owe anything for an event of this type;
    /// cheap (no read that is not cached), so the fan-out reads a decision
    /// only when someone wants it.
    async fn wants(&self, app: &App, event_type: &str) -> bool;

    /// The deliveries owed for an event.
    async fn owed(&self, app: &App, event: &OutboxEvent<'_>) -> Vec<Owed>;

    /// One attempt at a delivery.
    async fn send(&self, app: &App, delivery: &Delivery) -> Sent;
}

/// Delivery settings (the configuration file's `[outbox]`).
#[derive(Debug, Clone)]
pub struct OutboxConfig {
    /// Attempts before a delivery is dead-lettered.
    pub max_attempts: u32,
    /// Age after which a delivery is dead-lettered, whatever its attempts.
    pub max_age: Duration,
    /// The wait after the first failure; it doubles per attempt.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// The longest one attempt may take; a claim's lease is longer, so a
    /// delivery is only claimed again once its attempt cannot be running.
    pub attempt_timeout: Duration,
    /// Attempts in flight at once in this process.
    pub concurrency: usize,
    /// How often the log and the due deliveries are checked when nothing
    /// wakes the loops (entries other replicas appended, retries).
    pub poll: Duration,
}

impl Default for OutboxConfig {
    fn default() -> Self {
        OutboxConfig {
            max_attempts: 12,
            max_age: Duration::from_secs(24 * 3600),
            backoff: Duration::from_secs(5),
            max_backoff: Duration::from_secs(600),
            attempt_timeout: Duration::from_secs(10),
            concurrency: 64,
            poll: Duration::from_secs(1),
        }
    }
}

impl OutboxConfig {
    fn lease(&self) -> Duration {
        self.attempt_timeout + Duration::from_secs(5)
    }

    /// The wait before attempt `attempts + 1`: exponential, capped, with
    /// full jitter over its upper half so receivers that failed together
    /// are not retried together.
    pub fn backoff_after(&self, attempts: u32) -> Duration {
        let exp = self
            .backoff
            .saturating_mul(1u32 << attempts.saturating_sub(1).min(20));
        let capped = exp.min(self.max_backoff);
        let half = capped / 2;
        half + rand::thread_rng().gen_range(Duration::ZERO..=half)
    }

    /// What follows a failed attempt.
    pub fn after_failure(&self, d: &Delivery, now_ms: i64, permanent: bool) -> DeliveryNext {
        let next = now_ms + self.backoff_after(d.attempts).as_millis() as i64;
        let too_old = next - d.age_from_ms > self.max_age.as_millis() as i64;
        if permanent || d.attempts >= self.max_attempts || too_old {
            DeliveryNext::Dead
        } else {
            DeliveryNext::RetryAt(next)
        }
    }
}

/// The channels and settings the outbox runs with.
pub struct Outbox {
    pub channels: Vec<Arc<dyn Channel>>,
    pub config: OutboxConfig,
    /// Woken when an attempt finishes and when attempts are recorded.
    finished: tokio::sync::Notify,
}

impl Outbox {
    pub fn new(channels: Vec<Arc<dyn Channel>>, config: OutboxConfig) -> Outbox {
        Outbox {
            channels,
            config,
            finished: tokio::sync::Notify::new(),
        }
    }
}

impl App {
    /// Starts the fan-out and the dispatcher. Without channels the fan-out
    /// still moves the cursor, so channels configured later start from
    /// then rather than replaying history.
    pub fn spawn_outbox(self: &Arc<Self>, outbox: Outbox) -> tokio::task::JoinHandle<()> {
        let app = Arc::clone(self);
        let outbox = Arc::new(outbox);
        tokio::spawn(async move {
            let failures = Throttle::new(Duration::from_secs(60));
            let slots = Arc::new(Semaphore::new(outbox.config.concurrency.max(1)));
            let by_name: Arc<HashMap<&'static str, Arc<dyn Channel>>> = Arc::new(
                outbox
                    .channels
                    .iter()
                    .map(|c| (c.name(), c.clone()))
                    .collect(),
            );
            // Claims are made when the fan-out stored something, when an
            // attempt finished (a later delivery to its target may now go),
            // and on every poll (retries coming due, other replicas' rows);
            // not on every commit, which would cost the decide path a
            // query per batch.
            let (done, results) = mpsc::unbounded_channel();
            {
                let (app, outbox) = (app.clone(), outbox.clone());
                tokio::spawn(async move { app.record_attempts(&outbox, results).await });
            }
            let (mut fan, mut claim) = (true, true);
            loop {
                if fan {
                    fan = false;
                    match app.fan_out(&outbox).await {
                        Ok((stored, more)) => {
                            claim |= stored > 0;
                            fan = more;
                        }
                        Err(e) => {
                            if let Some(repeats) = failures.admit(&e.to_string()) {
                                tracing::warn!(error = %e, repeats, "the outbox cannot read the log; retrying");
                            }
                        }
                    }
                }
                if claim {
                    claim = false;
                    if let Err(e) = app.dispatch(&outbox, &slots, &by_name, &done).await {
                        if let Some(repeats) = failures.admit(&e.to_string()) {
                            tracing::warn!(error = %e, repeats, "the outbox cannot claim deliveries; retrying");
                        }
                    }
                }
                // More entries to read: claim what this page owed (above),
                // then read on without waiting.
                if fan {
                    continue;
                }
                tokio::select! {
                    _ = app.events.committed() => {
                        // Gathers the commits of the next moments into one
                        // read of the log.
                        tokio::time::sleep(FAN_OUT_GATHER).await;
                        fan = true;
                    }
                    _ = outbox.finished.notified() => {
                        tokio::time::sleep(CLAIM_GATHER).await;
                        claim = true;
                    }
                    _ = tokio::time::sleep(outbox.config.poll) => (fan, claim) = (true, true),
                }
            }
        })
    }

    /// Claims what is due and starts one attempt per delivery, as many at
    /// once as there are free slots.
    async fn dispatch(
        self: &Arc<Self>,
        outbox: &Arc<Outbox>,
        slots: &Arc<Semaphore>,
        channels: &Arc<HashMap<&'static str, Arc<dyn Channel>>>,
        done: &mpsc::UnboundedSender<Finished>,
    ) -> crate::AppResult<()> {
        loop {
            let free = slots.available_permits();
            if free == 0 {
                return Ok(());
            }
            let now = now_unix_millis();
            let lease = now + outbox.config.lease().as_millis() as i64;
            let claimed = self.store.claim_deliveries(now, lease, free as u32).await?;
            let full = claimed.len() == free;
            for d in claimed {
                let Ok(permit) = slots.clone().acquire_owned().await else {
                    return Ok(());
                };
                let (app, outbox, channels, done) =
                    (self.clone(), outbox.clone(), channels.clone(), done.clone());
                tokio::spawn(async move {
                    let finished = app.attempt(&outbox, &channels, d).await;
                    drop(permit);
                    let _ = done.send(finished);
                    // The freed slot may take another delivery now: this
                    // one stays claimed until it is recorded, so neither it
                    // nor a later event to its target can be claimed twice
                    // or out of order meanwhile.
                    outbox.finished.notify_one();
                });
            }
            if !full {
                return Ok(());
            }
        }
    }

    /// One attempt; the result is recorded by the caller, with others.
    async fn attempt(
        &self,
        outbox: &Outbox,
        channels: &HashMap<&'static str, Arc<dyn Channel>>,
        d: Delivery,
    ) -> Finished {
        let started = Instant::now();
        let at = now_unix_millis();
        let sent = match channels.get(d.new.channel.as_str()) {
            Some(channel) => {
                match tokio::time::timeout(outbox.config.attempt_timeout, channel.send(self, &d))
                    .await
                {
                    Ok(sent) => sent,
                    Err(_) => Sent::Failed {
                        code: None,
                        error: format!(
                            "no answer within {} s",
                            outbox.config.attempt_timeout.as_secs_f32()
                        ),
                        permanent: false,
                    },
                }
            }
            // Configured away since it was owed (e.g. Slack removed).
            None => Sent::Failed {
                code: None,
                error: format!("the {} channel is not configured", d.new.channel),
                permanent: true,
            },
        };
        let (code, error, next) = match sent {
            Sent::Delivered { code } => (code, None, DeliveryNext::Delivered),
            Sent::Failed {
                code,
                error,
                permanent,
            } => {
                let next = outbox
                    .config
                    .after_failure(&d, now_unix_millis(), permanent);
                (code, Some(error), next)
            }
        };
        metrics::counter!("gatehouse_deliveries_total",
            "channel" => d.new.channel.clone(),
            "result" => match next { DeliveryNext::Delivered => "delivered", DeliveryNext::RetryAt(_) => "retry", DeliveryNext::Dead => "dead" })
        .increment(1);
        if next == DeliveryNext::Dead {
            tracing::warn!(delivery = %d.new.id, channel = %d.new.channel, target = %d.new.target,
                error = error.as_deref().unwrap_or(""), "delivery dead-lettered");
        }
        let attempt = DeliveryAttempt {
            delivery_id: d.new.id.clone(),
            attempt: d.attempts,
            at_ms: at,
            duration_ms: started.elapsed().as_millis() as i64,
            status_code: code,
            error,
        };
        (attempt, next)
    }

    /// Records finished attempts, many per transaction: one commit per
    /// delivery would cost every decision a share of the disk's syncs.
    async fn record_attempts(&self, outbox: &Outbox, mut rx: mpsc::UnboundedReceiver<Finished>) {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(RECORD_GATHER).await;
            let mut batch = vec![first];
            while let Ok(more) = rx.try_recv() {
                batch.push(more);
            }
            if let Err(e) = self.store.finish_deliveries(&batch).await {
                // Their leases run out and they are attempted again: at
                // least once, never lost.
                tracing::warn!(error = %e, count = batch.len(), "cannot record delivery attempts");
            }
            outbox.finished.notify_one();
        }
    }
}
