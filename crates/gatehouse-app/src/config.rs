use std::time::Duration;

use time::UtcOffset;

/// Settings of the use cases. Every field has a CLI flag and a
/// `GATEHOUSE_*` variable in the binary.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// How long a pending review waits when no policy sets `@review_timeout`.
    pub default_review_timeout: Duration,
    /// Requests per second per API key; 0 turns rate limiting off.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Offset used to derive `local_hour` and `weekday` for policies.
    pub utc_offset: UtcOffset,
    /// How often pending decisions past their deadline are expired.
    pub sweep_interval: Duration,
    /// How long a successful key lookup is cached; a revoked key stops
    /// working within this time on every replica.
    pub key_cache_ttl: Duration,
    /// The `aud` claim of approval tokens: the executor they are meant for.
    pub token_audience: String,
    /// How long an approval token stays valid after it is issued.
    pub token_ttl: Duration,
    /// How often, while anyone listens for domain events, the log is read
    /// for entries other replicas appended (local ones are read at once).
    pub event_poll_interval: Duration,
    /// Long-polls waiting at once; a wait beyond them answers the
    /// decision's current state at once instead of waiting.
    pub max_waiters: usize,
    /// The longest one long-poll waits; longer requests are capped to it.
    /// At most [`MAX_WAIT_SECONDS`].
    pub max_wait: Duration,
    /// Packets, proofs, verifications and replays built at once; more
    /// queue for a slot, so their memory is bounded whatever the load.
    pub max_evidence_jobs: usize,
    /// A console session ends after this long without a request.
    pub session_idle: Duration,
    /// A console session ends this long after sign-in, however active.
    pub session_absolute: Duration,
    /// Failed and successful sign-ins allowed per user name per minute.
    pub sign_ins_per_minute: u32,
    /// The address people and receivers reach this server at, for links
    /// in notifications; without it links are paths.
    pub public_url: Option<String>,
    /// Which callback URLs requests may name (none by default).
    pub callbacks: crate::callbacks::CallbackAllowlist,
}

impl Default for AppConfig {
    fn default() -> Self {
        AppConfig {
            default_review_timeout: Duration::from_secs(24 * 3600),
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            utc_offset: UtcOffset::UTC,
            sweep_interval: Duration::from_secs(1),
            key_cache_ttl: Duration::from_secs(5),
            token_audience: "gatehouse-executor".to_string(),
            token_ttl: Duration::from_secs(600),
            event_poll_interval: Duration::from_secs(1),
            max_waiters: 2048,
            max_wait: Duration::from_secs(MAX_WAIT_SECONDS),
            max_evidence_jobs: default_evidence_jobs(),
            session_idle: Duration::from_secs(30 * 60),
            session_absolute: Duration::from_secs(12 * 3600),
            sign_ins_per_minute: 5,
            public_url: None,
            callbacks: Default::default(),
        }
    }
}

/// Two evidence jobs per core: they are CPU work (hashing, signatures)
/// between reads.
fn default_evidence_jobs() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) * 2
}

/// The longest a caller may wait for a decision in one call, in seconds;
/// longer requests are capped to it.
pub const MAX_WAIT_SECONDS: u64 = 60;
