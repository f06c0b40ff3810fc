use std::time::Duration;

/// Settings of the HTTP layer itself; the use cases' settings are
/// [`gatehouse_app::AppConfig`], the connections' [`crate::ConnectionLimits`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
    /// Time for a whole request body to arrive, counted from when its
    /// headers did; a slower body is answered 408 and its connection closed.
    pub body_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 256 * 1024,
            body_timeout: Duration::from_secs(30),
        }
    }
}
