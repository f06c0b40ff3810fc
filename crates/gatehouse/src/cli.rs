//! Raw command-line arguments. Validation into typed settings happens in
//! the command modules, before anything runs.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "A self-hosted decision gate for AI agents and automation"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the HTTP service.
    Serve(Box<ServeArgs>),
    /// Manage API keys directly in the database.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage people (reviewers, auditors, admins) and their groups
    /// directly in the database.
    #[command(subcommand)]
    Users(UsersCommand),
    /// Check and test policy sets.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// The configuration file.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Notifications owed to webhooks, callbacks, Slack and email: list
    /// them and retry dead letters, directly in the database.
    #[command(subcommand)]
    Deliveries(crate::deliveries::DeliveriesCommand),
    /// Private hooks for no-code tools (n8n, Zapier, Make), directly in
    /// the database.
    #[command(subcommand)]
    Hooks(crate::hooks::HooksCommand),
    /// MCP: Gatehouse's own tools on stdio, and the gating proxy in front
    /// of any MCP server.
    #[command(subcommand)]
    Mcp(crate::mcp::McpCommand),
    /// Submit a Gate request; exit 0 only if the action may proceed.
    Request(RequestArgs),
    /// Approve or reject a pending request.
    #[command(subcommand)]
    Review(ReviewCommand),
    /// List or show decisions.
    #[command(subcommand)]
    Decisions(DecisionsCommand),
    /// The transparency log: its key, and an offline check of the database.
    #[command(subcommand)]
    Log(LogCommand),
    /// Approval tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Print the OpenAPI 3.1 document of this version's HTTP API (the same
    /// as GET /openapi.json), e.g. to generate a client.
    Openapi,
    /// Verify a Decision Packet offline with a log key you trust.
    Verify {
        /// The packet (JSON from GET /api/decision/{id}/packet).
        packet: PathBuf,
        /// The log's verifier key (`name+id+base64`), or a file holding it.
        /// Never taken from the packet.
        #[arg(long)]
        log_key: String,
        /// Print the checks and the verdict as JSON: {"verified", "summary",
        /// "checks": [{"name", "ok", "detail"}]}.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Verify an approval token offline (everything but single use, which
    /// only the server can check at redemption). Exit 0 only if it passes.
    Verify {
        token: String,
        /// JSON file with the action about to run: {"tool_name", "subject", "payload"}.
        #[arg(long)]
        action: PathBuf,
        /// The JWKS: an http(s) URL (e.g. https://gate/.well-known/jwks.json) or a file.
        #[arg(long)]
        jwks: String,
        /// The audience this executor expects.
        #[arg(long, default_value = "gatehouse-executor")]
        audience: String,
    },
}

#[derive(Subcommand)]
pub enum LogCommand {
    /// Print the log's public key (signed-note verifier format).
    Key {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Make a new private log key, e.g. for replicas sharing PostgreSQL.
    Keygen {
        #[arg(long, default_value = "gatehouse.local/log")]
        origin: String,
        /// Make a new approval-token key (PKCS#8 PEM) instead.
        #[arg(long)]
        token: bool,
        /// Write the key to this file, created with mode 0600 (it must not
        /// exist yet); without it the key is printed, e.g. for a secret store.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Prove that today's log extends a checkpoint saved earlier (a file
    /// holding the signed note from GET /api/log/checkpoint).
    Consistency {
        old_checkpoint: PathBuf,
        #[command(flatten)]
        storage: StorageArgs,
        /// Verifier key to trust; defaults to the key of the local signing key.
        #[arg(long)]
        log_key: Option<String>,
    },
    /// Recompute the tree from the stored leaves, check it against the latest
    /// signed checkpoint, and check every decision against its log entry.
    Verify {
        #[command(flatten)]
        storage: StorageArgs,
        /// Verifier key to trust; defaults to the key of the local signing key.
        #[arg(long)]
        log_key: Option<String>,
    },
}

/// Where data lives: an SQLite directory (default) or a PostgreSQL URL.
#[derive(Args, Clone)]
pub struct StorageArgs {
    /// Directory of the embedded SQLite database.
    #[arg(
        long,
        env = "GATEHOUSE_DATA",
        default_value = "./gatehouse-data",
        conflicts_with = "database_url"
    )]
    pub data: PathBuf,
    /// PostgreSQL URL; use it when several replicas share one database.
    #[arg(long, env = "GATEHOUSE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// File with the log's checkpoint signing key (signed-note private key).
    /// Default with SQLite: DATA/log-signing.key, created on first use.
    /// Required with PostgreSQL: every replica must sign with the same key.
    /// The key's text in GATEHOUSE_LOG_SIGNING_KEY takes precedence.
    #[arg(long, env = "GATEHOUSE_LOG_KEY_FILE")]
    pub log_key_file: Option<PathBuf>,
    /// File with the approval-token signing key (Ed25519, PKCS#8 PEM).
    /// Default with SQLite: DATA/token-signing.pem, created on first use.
    /// Required with PostgreSQL: every replica must sign with the same key.
    /// The key's text in GATEHOUSE_TOKEN_SIGNING_KEY takes precedence.
    #[arg(long, env = "GATEHOUSE_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,
    /// Name of the log (the checkpoint origin) when a new key is created.
    #[arg(
        long,
        env = "GATEHOUSE_LOG_ORIGIN",
        default_value = "gatehouse.local/log"
    )]
    pub log_origin: String,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum UnknownAction {
    Review,
    Reject,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration file: every key, type, duration, URL and
    /// secret reference (env:NAME, file:PATH); an error names its line.
    Check { file: PathBuf },
}

#[derive(Args)]
pub struct ServeArgs {
    /// A TOML configuration file: every flag below by its long name with
    /// underscores, and the notification sections (docs/NOTIFICATIONS.md).
    /// Flags and environment variables override it.
    #[arg(long, env = "GATEHOUSE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on.
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    #[command(flatten)]
    pub storage: StorageArgs,
    /// Policy directory (.cedar files and one .cedarschema). Without it the
    /// built-in starter set is used (examples/policies/starter).
    #[arg(long, env = "GATEHOUSE_POLICIES")]
    pub policies: Option<PathBuf>,
    /// What to do with actions the policy schema does not declare.
    #[arg(
        long,
        env = "GATEHOUSE_UNKNOWN_ACTION",
        value_enum,
        default_value = "review"
    )]
    pub unknown_action: UnknownAction,
    /// Default review deadline, e.g. 30m, 24h, 7d.
    #[arg(long, env = "GATEHOUSE_REVIEW_TIMEOUT", default_value = "24h")]
    pub review_timeout: String,
    /// Requests per second per API key (0 disables rate limiting).
    #[arg(long, env = "GATEHOUSE_RATE_LIMIT", default_value_t = 100)]
    pub rate_limit: u32,
    /// Burst size per API key.
    #[arg(long, env = "GATEHOUSE_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// Largest accepted request body in bytes.
    #[arg(long, env = "GATEHOUSE_BODY_LIMIT", default_value_t = 256 * 1024)]
    pub body_limit: usize,
    /// Time for a request's headers to arrive, e.g. 10s; an idle keep-alive
    /// connection is closed after the same time.
    #[arg(long, env = "GATEHOUSE_HEADER_TIMEOUT", default_value = "10s")]
    pub header_timeout: String,
    /// Time for a whole request body to arrive once its headers have, e.g.
    /// 30s; a slower body is answered 408 and its connection closed.
    #[arg(long, env = "GATEHOUSE_BODY_TIMEOUT", default_value = "30s")]
    pub body_timeout: String,
    /// Connections open at once; one more is answered 503 and closed.
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS", default_value_t = 8192,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Long-polls (`?wait=`) waiting at once; a wait beyond them answers
    /// the decision's current state at once.
    #[arg(long, env = "GATEHOUSE_MAX_WAITERS", default_value_t = 2048)]
    pub max_waiters: usize,
    /// The address people reach this server at (e.g.
    /// https://gate.example.com); with https the console's cookies are
    /// marked Secure.
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A console session ends after this long without activity.
    #[arg(long, env = "GATEHOUSE_SESSION_IDLE", default_value = "30m")]
    pub session_idle: String,
    /// A console session ends this long after sign-in, however active.
    #[arg(long, env = "GATEHOUSE_SESSION_LIFETIME", default_value = "12h")]
    pub session_lifetime: String,
    /// Sign-in attempts allowed per user name per minute.
    #[arg(long, env = "GATEHOUSE_SIGN_IN_LIMIT", default_value_t = 5)]
    pub sign_in_limit: u32,
    /// The longest one long-poll waits, at most 60s; longer waits asked
    /// for are capped to it.
    #[arg(long, env = "GATEHOUSE_MAX_WAIT", default_value = "60s")]
    pub max_wait: String,
    /// SQLite read connections open at once (reads beyond them queue).
    #[arg(long, env = "GATEHOUSE_READ_CONNECTIONS", default_value_t = 8,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub read_connections: u32,
    /// The `aud` claim of approval tokens: the executor that redeems them.
    #[arg(
        long,
        env = "GATEHOUSE_TOKEN_AUDIENCE",
        default_value = "gatehouse-executor"
    )]
    pub token_audience: String,
    /// How long an approval token is valid, e.g. 10m.
    #[arg(long, env = "GATEHOUSE_TOKEN_TTL", default_value = "10m")]
    pub token_ttl: String,
    /// How often to re-read the approval-token key file, e.g. 10s, so that
    /// a rotated key is used without a restart; `off` never re-reads it.
    /// SIGHUP re-reads it at once.
    #[arg(long, env = "GATEHOUSE_TOKEN_KEY_RELOAD", default_value = "10s")]
    pub token_key_reload: String,
    /// UTC offset used for the local_hour and weekday policy attributes,
    /// e.g. +02:00.
    #[arg(long, env = "GATEHOUSE_UTC_OFFSET", default_value = "+00:00")]
    pub utc_offset: String,
    /// A second address that serves GET /metrics without a key, for a
    /// Prometheus on a private network (e.g. 127.0.0.1:9090). On the main
    /// address /metrics needs an admin or auditor key.
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN")]
    pub metrics_listen: Option<String>,
    /// Server log format: `text` (colours only on a terminal) or `json`
    /// (one object per line, with the request id and span fields).
    #[arg(long, env = "GATEHOUSE_LOG_FORMAT", value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key; its secret is the last line of output and is shown once.
    Create {
        #[arg(long, value_parser = ["agent", "reviewer", "admin", "auditor", "executor"])]
        role: String,
        #[arg(long)]
        name: Option<String>,
        /// The person the key belongs to (an active user): reviews made
        /// with it are theirs. The name defaults to theirs.
        #[arg(long)]
        user: Option<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Replace the approval-token signing key. New tokens use the new key
    /// once the server restarts with it; the old public key stays in the
    /// JWKS until every token it signed has expired.
    Rotate {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Revoke a key by id.
    Revoke {
        id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Subcommand)]
pub enum UsersCommand {
    /// Link a Slack user id to a person (replacing the id's earlier link).
    LinkSlack {
        name: String,
        slack_user_id: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Create a user; the password is read from standard input (one line)
    /// and stored only as an Argon2id hash.
    Create {
        name: String,
        /// A group the user reviews for; repeat for several.
        #[arg(long = "group")]
        groups: Vec<String>,
        /// The person's Slack user id (e.g. U012AB3CD): their clicks on
        /// Slack approval messages are their reviews.
        #[arg(long)]
        slack_user_id: Option<String>,
        #[arg(long)]
        email: Option<String>,
        #[arg(long, default_value = "reviewer", value_parser = ["reviewer", "auditor", "admin"])]
        role: String,
        /// Read the password from standard input (required: passwords are
        /// never taken from the command line, where `ps` shows them).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// List users with their roles and groups.
    List {
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Disable a user: no more sign-ins, and their keys stop working.
    Disable {
        name: String,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Replace a user's groups (none given: the user leaves every group).
    SetGroups {
        name: String,
        groups: Vec<String>,
        #[command(flatten)]
        storage: StorageArgs,
    },
    /// Set a user's password, read from standard input.
    SetPassword {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        storage: StorageArgs,
    },
}

#[derive(Subcommand)]
pub enum PolicyCommand {
    /// Validate a policy directory against its schema.
    Check { dir: PathBuf },
    /// Run table-driven cases (request → expected verdict) against a policy directory.
    Test { dir: PathBuf, cases: PathBuf },
}

/// How to reach a running server.
#[derive(Args, Clone)]
pub struct RemoteArgs {
    #[arg(long, env = "GATEHOUSE_URL", default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// API key (prefer the environment variable so it stays out of shell history).
    #[arg(long, env = "GATEHOUSE_API_KEY", hide_env_values = true)]
    pub key: String,
}

#[derive(Args)]
pub struct RequestArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// A JSON file with a Gate request body; flags override its fields.
    #[arg(long)]
    pub file: Option<PathBuf>,
    #[arg(long)]
    pub task: Option<String>,
    #[arg(long)]
    pub workflow: Option<String>,
    #[arg(long)]
    pub tool: Option<String>,
    #[arg(long)]
    pub subject: Option<String>,
    #[arg(long, value_parser = ["low", "medium", "high"])]
    pub risk: Option<String>,
    #[arg(long)]
    pub task_label: Option<String>,
    /// Repeat for several summary lines.
    #[arg(long)]
    pub summary: Vec<String>,
    /// Payload as a JSON object.
    #[arg(long)]
    pub payload: Option<String>,
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Wait for a pending request to be resolved, up to this many seconds
    /// (default 3600 when given without a value).
    #[arg(long, num_args = 0..=1, default_missing_value = "3600")]
    pub wait: Option<u64>,
    /// Print the full JSON response instead of a summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ReviewCommand {
    Approve {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    Reject {
        id: String,
        #[arg(long)]
        comment: Option<String>,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}

#[derive(Subcommand)]
pub enum DecisionsCommand {
    List {
        #[arg(long)]
        status: Option<String>,
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[command(flatten)]
        remote: RemoteArgs,
    },
    Show {
        id: String,
        #[command(flatten)]
        remote: RemoteArgs,
    },
}
