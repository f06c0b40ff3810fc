use std::time::Duration;

use time::UtcOffset;

/// Server settings that are not about storage or policies. Every field has
/// a CLI flag and a `GATEHOUSE_*` variable in the binary.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// How long a pending review waits when no policy sets `@review_timeout`.
    pub default_review_timeout: Duration,
    /// Requests per second per API key; 0 turns rate limiting off.
    pub rate_limit_per_second: u32,
    pub rate_limit_burst: u32,
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            default_review_timeout: Duration::from_secs(24 * 3600),
            rate_limit_per_second: 100,
            rate_limit_burst: 200,
            body_limit: 256 * 1024,
            utc_offset: UtcOffset::UTC,
            sweep_interval: Duration::from_secs(1),
            key_cache_ttl: Duration::from_secs(5),
            token_audience: "gatehouse-executor".to_string(),
            token_ttl: Duration::from_secs(600),
        }
    }
}

/// The longest `?wait=` a caller may ask for, in seconds.
pub const MAX_WAIT_SECONDS: u64 = 60;
