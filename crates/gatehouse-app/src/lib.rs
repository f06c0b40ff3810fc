//! Gatehouse's use cases, independent of how they are reached. The HTTP
//! API, the CLI, and later the console, the notifier and the MCP server are
//! thin adapters over [`App`]: they authenticate a [`Caller`], call one
//! method, and shape the answer. Nothing here knows about HTTP.
//!
//! One module per capability, each adding methods to [`App`]:
//! [`decide`], [`review`], [`tokens`], [`evidence`] (replay, packets,
//! proofs), [`executions`] (receipts and outcomes), [`access`] (callers,
//! roles, keys), [`tasks`] (task events), [`audit`] (the whole log,
//! checked offline) and [`rows`] (the rows compared with the log). [`events`] publishes what happened, across replicas.

pub mod access;
pub mod audit;
pub mod callbacks;
mod config;
pub mod console;
pub mod decide;
pub mod deliveries;
mod error;
pub mod events;
pub mod evidence;
pub mod executions;
pub mod hooks;
mod integrity;
pub mod notice;
pub mod outbox;
mod packets;
mod policies;
pub mod review;
pub mod rows;
pub mod sessions;
pub mod tasks;
pub mod telemetry;
pub mod throttle;
pub mod tokens;
pub mod users;

use std::sync::Arc;

use arc_swap::ArcSwap;
use gatehouse_core::decision::truncate_to_millis;
use gatehouse_policy::{Engine, EngineOptions};
use gatehouse_store::Store;
use gatehouse_token::TokenSigner;
use governor::DefaultKeyedRateLimiter;
use time::OffsetDateTime;
use tokio::sync::watch;

pub use access::{Caller, NewKey};
pub use config::{AppConfig, MAX_WAIT_SECONDS};
pub use error::{AppError, AppResult};
pub use events::{DomainEvent, Published, Resolution};

use crate::access::Cache;
use crate::events::Events;
use crate::policies::PolicyRegistry;

/// The application: every use case, over one store, one policy registry
/// and the approval-token key in force.
pub struct App {
    store: Arc<dyn Store>,
    /// The approval-token key in force; replaced while serving by
    /// [`App::replace_token_key`].
    tokens: ArcSwap<TokenSigner>,
    policies: PolicyRegistry,
    config: AppConfig,
    keys: Cache<gatehouse_store::ApiKey>,
    users: Cache<gatehouse_store::User>,
    /// Whether a group exists, by name (owner routing).
    groups: Cache<bool>,
    /// The webhook subscriptions made through the API.
    webhooks: Cache<Arc<Vec<gatehouse_store::outbox::WebhookRecord>>>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Sign-ins per user name ([`AppConfig::sign_ins_per_minute`]).
    sign_ins: Option<DefaultKeyedRateLimiter<String>>,
    /// Sweeps since expired console sessions were last deleted.
    sweeps: std::sync::atomic::AtomicU32,
    events: Events,
    checkpoint_cache: integrity::VerifiedCheckpoint,
    /// Per decision, the state its proven entries give.
    proven: integrity::Proven,
    /// Set once the process is stopping: waits answer at once.
    stopping: watch::Sender<bool>,
    /// Expiry sweeps that fail during an outage are logged once a minute.
    sweep_failures: throttle::Throttle,
    /// Retired token keys, kept to sign their stored tokens again.
    retired_signers: std::sync::RwLock<std::collections::HashMap<String, Arc<TokenSigner>>>,
    /// One permit per long-poll allowed to wait ([`AppConfig::max_waiters`]).
    waiters: tokio::sync::Semaphore,
    /// One permit per evidence job ([`AppConfig::max_evidence_jobs`]).
    evidence_jobs: tokio::sync::Semaphore,
}

/// The current time at the millisecond precision everything is stored at.
pub(crate) fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

impl App {
    /// Builds the application and records the policy version in force.
    pub async fn new(
        store: Arc<dyn Store>,
        engine: Engine,
        options: EngineOptions,
        config: AppConfig,
        tokens: Arc<TokenSigner>,
    ) -> AppResult<Arc<Self>> {
        let limiter = access::rate_limiter(config.rate_limit_per_second, config.rate_limit_burst);
        let policies = PolicyRegistry::new(engine, options);
        policies.persist_current(store.as_ref(), now()).await?;
        let events = Events::new(store.clone(), config.event_poll_interval);
        Ok(Arc::new(App {
            store,
            tokens: ArcSwap::new(tokens),
            policies,
            keys: Cache::default(),
            users: Cache::default(),
            groups: Cache::default(),
            webhooks: Cache::default(),
            limiter,
            sign_ins: sessions::sign_in_limiter(config.sign_ins_per_minute),
            sweeps: Default::default(),
            events,
            checkpoint_cache: Default::default(),
            proven: Default::default(),
            stopping: watch::channel(false).0,
            sweep_failures: throttle::Throttle::new(std::time::Duration::from_secs(60)),
            retired_signers: Default::default(),
            waiters: tokio::sync::Semaphore::new(config.max_waiters),
            evidence_jobs: tokio::sync::Semaphore::new(config.max_evidence_jobs.max(1)),
            config,
        }))
    }

    pub fn config(&self) -> &AppConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The policy set in force.
    pub fn engine(&self) -> &Arc<Engine> {
        self.policies.current()
    }

    /// The domain events: what happened, on this replica and the others.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Tells every open wait to answer now with the current state, because
    /// the process is stopping. Waits that start afterwards do not wait.
    pub fn stop_waiting(&self) {
        self.stopping.send_replace(true);
    }

    /// Resolves once [`App::stop_waiting`] was called.
    pub(crate) async fn stopping(&self) {
        let mut rx = self.stopping.subscribe();
        // An error means the sender is gone, which cannot outlive `self`.
        let _ = rx.wait_for(|stopping| *stopping).await;
    }

    /// Waits for a slot to build evidence in (see
    /// [`AppConfig::max_evidence_jobs`]); the slot is freed when dropped.
    pub(crate) async fn evidence_slot(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        // The semaphore is never closed, so this is always `Some`.
        self.evidence_jobs.acquire().await.ok()
    }

    /// Readiness: the database answers, its schema is usable, and a policy
    /// set is loaded.
    pub async fn ready(&self) -> AppResult<()> {
        self.store
            .ping()
            .await
            .map_err(|e| AppError::Unavailable(e.to_string()))
    }

    /// Starts the work a server needs besides answering requests: the
    /// expiry sweeper. Returns its handle so callers can stop it.
    pub fn spawn_background(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let app = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(app.config.sweep_interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                app.sweep().await;
            }
        })
    }
}
