//! `gatehouse mcp serve` (Gatehouse's tools on stdio) and `gatehouse mcp
//! proxy` (the gating proxy in front of another MCP server).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use gatehouse_mcp::proxy::{Gating, GatingConfig, Upstream};
use gatehouse_mcp::{GatehouseServer, RemoteGate};
use rmcp::ServiceExt;

use crate::cli::RemoteArgs;

/// The longest `--hold`: held calls must answer before common MCP clients
/// give up on a tool call (60 s by default in most of them).
const MAX_HOLD: Duration = Duration::from_secs(55);

#[derive(Subcommand)]
pub enum McpCommand {
    /// Serve Gatehouse's tools (request_approval, get_decision,
    /// wait_for_decision, redeem_token, report_execution, report_outcome;
    /// list_pending and review for reviewer keys) over MCP on stdio, through
    /// the server at GATEHOUSE_URL with the key in GATEHOUSE_API_KEY.
    Serve {
        #[command(flatten)]
        remote: RemoteArgs,
    },
    /// Put Gatehouse in front of an MCP server: every tools/call becomes a
    /// decision and runs only if allowed or approved, with exactly the
    /// approved arguments. Speaks MCP on stdio.
    Proxy(ProxyArgs),
}

#[derive(Args)]
pub struct ProxyArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// The agent name decisions are asked for (policies see it as the
    /// principal and `context.workflow`).
    #[arg(long)]
    pub agent: String,
    /// The tool argument whose value is the decision's subject (e.g.
    /// `path`); without it, or when a call lacks it, the server's name.
    #[arg(long)]
    pub subject_arg: Option<String>,
    /// How long a call that needs review is held waiting for it (at most
    /// 55s, under common client time-outs); after that the client is told
    /// to retry later.
    #[arg(long, default_value = "50s")]
    pub hold: String,
    /// Names the upstream server: actions become `NAME.tool` and the
    /// subject defaults to NAME. Without it, actions are the bare tool names.
    #[arg(long)]
    pub server_name: Option<String>,
    /// Leave tools the policies reject whatever their arguments out of
    /// tools/list (calls to them are still decided, and rejected).
    #[arg(long)]
    pub hide_rejected: bool,
    /// The risk (low, medium or high) every call is asked with.
    #[arg(long, default_value = "medium")]
    pub risk: String,
    /// Wrap a streamable-HTTP MCP server at this URL instead of a command.
    #[arg(long, conflicts_with = "command")]
    pub upstream_url: Option<String>,
    /// The environment variable holding the bearer token the upstream at
    /// --upstream-url expects (sent as `Authorization: Bearer …`); a
    /// variable, so the token stays out of the process list.
    #[arg(long, requires = "upstream_url", value_name = "VAR")]
    pub upstream_auth_env: Option<String>,
    /// The upstream MCP server's command and arguments, after `--`.
    #[arg(last = true)]
    pub command: Vec<String>,
}

/// Diagnostics go to stderr: stdout carries MCP.
fn log_to_stderr() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn remote(args: &RemoteArgs, timeout: Duration) -> Result<RemoteGate> {
    RemoteGate::new(&args.url, &args.key, timeout).map_err(|e| anyhow::anyhow!("{}", e.message))
}

pub async fn run(cmd: McpCommand) -> Result<ExitCode> {
    log_to_stderr();
    match cmd {
        McpCommand::Serve { remote: args } => {
            let gate = remote(&args, Duration::from_secs(30))?;
            let service = GatehouseServer::remote(gate)
                .serve(rmcp::transport::stdio())
                .await
                .context("the MCP client did not initialize the session")?;
            service.waiting().await.context("the MCP session failed")?;
            Ok(ExitCode::SUCCESS)
        }
        McpCommand::Proxy(args) => {
            let hold = gatehouse_policy::parse_duration(&args.hold).with_context(|| {
                format!(
                    "--hold {:?} is not a duration from 1s to 55s, like 50s",
                    args.hold
                )
            })?;
            if hold > MAX_HOLD {
                bail!(
                    "--hold {:?} is over 55s; clients give up on a tool call after about 60s",
                    args.hold
                );
            }
            if !matches!(args.risk.as_str(), "low" | "medium" | "high") {
                bail!("--risk must be low, medium or high, not {:?}", args.risk);
            }
            let upstream = match (args.upstream_url, args.command.split_first()) {
                (Some(url), None) => {
                    let bearer = match &args.upstream_auth_env {
                        Some(var) => Some(std::env::var(var).ok().filter(|v| !v.is_empty()).with_context(|| {
                            format!("--upstream-auth-env {var}: the variable is not set or empty")
                        })?),
                        None => None,
                    };
                    Upstream::Url { url, bearer }
                }
                (None, Some((program, rest))) => Upstream::Command {
                    program: program.clone(),
                    args: rest.to_vec(),
                },
                _ => bail!(
                    "name the upstream MCP server: a command after `--` (e.g. `-- npx @modelcontextprotocol/server-filesystem /srv/shared`) or --upstream-url URL"
                ),
            };
            let gate = remote(&args.remote, Duration::from_secs(15))?;
            let config = GatingConfig {
                agent: args.agent,
                subject_arg: args.subject_arg,
                hold,
                server_name: args.server_name,
                risk: args.risk,
                hide_rejected: args.hide_rejected,
            };
            gatehouse_mcp::proxy::run(Gating::new(config, gate), upstream).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
