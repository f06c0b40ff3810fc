//! The gating proxy: `gatehouse mcp proxy` in front of an MCP server that
//! runs as a child process over stdio, or one reached over streamable HTTP.
//! The proxy speaks stdio to its client, so a client's configuration changes
//! in one line.

pub mod gating;
mod messages;
pub mod relay;
mod report;

use std::process::Stdio;
use std::sync::Arc;

use rmcp::service::RoleServer;
use rmcp::transport::async_rw::AsyncRwTransport;
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};

pub use gating::{Gating, GatingConfig};
pub use messages::failed_closed;

/// The server behind the proxy.
#[derive(Debug, Clone)]
pub enum Upstream {
    /// A command that speaks MCP on its stdin and stdout.
    Command { program: String, args: Vec<String> },
    /// A streamable-HTTP MCP endpoint, with the bearer token to send it.
    Url { url: String, bearer: Option<String> },
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot start the upstream MCP server {program:?}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
}

/// Run the proxy on this process's stdin and stdout until the client or
/// the upstream goes away.
pub async fn run(gating: Gating, upstream: Upstream) -> Result<(), ProxyError> {
    let down =
        AsyncRwTransport::<RoleServer, _, _>::new_server(tokio::io::stdin(), tokio::io::stdout());
    let gating = Arc::new(gating);
    match upstream {
        Upstream::Command { program, args } => {
            let mut command = tokio::process::Command::new(&program);
            command.args(&args);
            // The upstream is another program: it never gets our key.
            command.env_remove("GATEHOUSE_API_KEY");
            // The child's diagnostics go where ours go; its stdout is MCP.
            let (child, _) = TokioChildProcess::builder(command)
                .stderr(Stdio::inherit())
                .spawn()
                .map_err(|source| ProxyError::Spawn { program, source })?;
            relay::relay(down, child, gating).await;
        }
        Upstream::Url { url, bearer } => {
            let mut config = StreamableHttpClientTransportConfig::with_uri(url);
            if let Some(token) = bearer {
                config = config.auth_header(token);
            }
            let up = StreamableHttpClientTransport::from_config(config);
            relay::relay(down, up, gating).await;
        }
    }
    Ok(())
}
