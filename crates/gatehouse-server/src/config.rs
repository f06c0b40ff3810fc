/// Settings of the HTTP layer itself; the use cases' settings are
/// [`gatehouse_app::AppConfig`].
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            body_limit: 256 * 1024,
        }
    }
}
