//! `gatehouse serve`: validate settings, open storage, load policies, serve.

use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_app::{App, AppConfig};
use gatehouse_policy::{read_policy_dir, starter_files, Engine, EngineOptions, UnknownActionMode};
use gatehouse_server::{router, ConnectionLimits, ServerConfig};
use time::UtcOffset;

use crate::cli::{LogFormat, ServeArgs, UnknownAction};
use crate::key_reload;
use crate::local::{
    load_previous_token_signer, load_token_signer, open_store_with, token_key_path,
};

fn parse_offset(raw: &str) -> Result<UtcOffset> {
    let format = time::macros::format_description!("[offset_hour sign:mandatory]:[offset_minute]");
    UtcOffset::parse(raw, &format)
        .with_context(|| format!("--utc-offset {raw:?} is not like +02:00"))
}

/// Logs to stderr: text, with colours only when stderr is a terminal, or
/// one JSON object per line; either way every line about a request
/// carries its request id (the `request` span's fields).
fn init_logging(format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_env("GATEHOUSE_LOG")
        .unwrap_or_else(|_| "info,sqlx=warn".into());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .init(),
    }
}

pub async fn run(
    args: ServeArgs,
    notify: gatehouse_notify::settings::NotifySettings,
) -> Result<()> {
    init_logging(args.log_format);

    // Validate every setting before touching storage or the network.
    let review_timeout = duration_flag("--review-timeout", &args.review_timeout)?;
    let token_ttl = duration_flag("--token-ttl", &args.token_ttl)?;
    let token_key_reload = key_reload::parse_interval(&args.token_key_reload)?;
    let config = AppConfig {
        default_review_timeout: review_timeout,
        rate_limit_per_second: args.rate_limit,
        rate_limit_burst: args.rate_burst,
        utc_offset: parse_offset(&args.utc_offset)?,
        token_audience: args.token_audience.clone(),
        token_ttl,
        max_waiters: args.max_waiters,
        max_wait: max_wait(&args.max_wait)?,
        session_idle: duration_flag("--session-idle", &args.session_idle)?,
        session_absolute: duration_flag("--session-lifetime", &args.session_lifetime)?,
        sign_ins_per_minute: args.sign_in_limit,
        public_url: args.public_url.clone(),
        callbacks: gatehouse_app::callbacks::CallbackAllowlist::parse(&notify.callbacks.allow)
            .map_err(|e| anyhow::anyhow!("[callbacks] allow: {e}"))?,
        ..AppConfig::default()
    };
    let notifier = gatehouse_notify::build(&notify, args.public_url.as_deref())
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let console = gatehouse_console::ConsoleConfig {
        secure_cookies: match &args.public_url {
            Some(url) if url.starts_with("https://") => true,
            Some(url) if url.starts_with("http://") => false,
            Some(url) => anyhow::bail!("--public-url {url:?} must start with https:// or http://"),
            None => false,
        },
    };
    let http = ServerConfig {
        body_limit: args.body_limit,
        body_timeout: duration_flag("--body-timeout", &args.body_timeout)?,
    };
    let connections = ConnectionLimits {
        header_timeout: duration_flag("--header-timeout", &args.header_timeout)?,
        max_connections: descriptors_for(args.max_connections as usize),
    };
    let options = EngineOptions {
        unknown_action: match args.unknown_action {
            UnknownAction::Review => UnknownActionMode::Review,
            UnknownAction::Reject => UnknownActionMode::Reject,
        },
    };
    let engine = match &args.policies {
        Some(dir) => Engine::compile(read_policy_dir(dir)?, options).with_context(|| {
            format!(
                "the policies in {} are not a valid set; not starting",
                dir.display()
            )
        })?,
        None => Engine::compile(starter_files(), options)
            .context("the built-in policy set is invalid; not starting")?,
    };
    let listener = gatehouse_server::listen::bind(&args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let metrics_listener = match &args.metrics_listen {
        Some(addr) => Some(
            gatehouse_server::listen::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} for metrics"))?,
        ),
        None => None,
    };
    // Installed before anything records, so no early metric is lost.
    gatehouse_server::metrics::handle();

    let store = open_store_with(&args.storage, args.read_connections as usize).await?;
    let tokens = load_token_signer(&args.storage)?;
    if store.list_keys().await?.is_empty() {
        tracing::warn!(
            "no API keys exist yet; create one with `gatehouse keys create --role admin`"
        );
    }
    let source = match &args.policies {
        Some(dir) => dir.display().to_string(),
        None => "built-in starter set".to_string(),
    };
    tracing::info!(policies = %source, version = engine.version(), count = engine.policy_count(), "policies loaded");
    let app = App::new(store, engine, options, config, tokens)
        .await
        .map_err(|e| anyhow::anyhow!("cannot start: {e}"))?;
    // The key `keys rotate` replaced signs its stored tokens again.
    if let Some(path) = token_key_path(&args.storage) {
        if let Some(previous) = load_previous_token_signer(&path)? {
            tracing::info!(
                kid = previous.kid(),
                "previous token key kept to show the tokens it issued"
            );
            app.keep_retired_signer(previous);
        }
    }
    let sweeper = app.spawn_background();
    let notifier_routes = notifier.routes(app.clone());
    // Deliveries run on their own low-priority runtime: they must never
    // take a core that a decision is waiting for.
    let background = crate::background::runtime()?;
    let deliveries = {
        let _on = background.enter();
        app.spawn_outbox(notifier.outbox)
    };
    // A key supplied in the environment cannot change while the server runs.
    let key_watcher = token_key_path(&args.storage)
        .map(|path| key_reload::spawn(app.clone(), path, token_key_reload));
    // The console is its own router beside the API's, so the API's
    // JSON error fallback and body rules do not apply to its pages.
    let routes = router(app.clone(), http)
        .merge(gatehouse_console::router(app.clone(), console))
        .merge(gatehouse_mcp::http::router(app.clone()))
        .merge(notifier_routes);
    tracing::info!("reviewer console at /console");
    let upkeep = tokio::spawn(async {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            gatehouse_server::metrics::upkeep();
        }
    });
    let metrics_server = match metrics_listener {
        Some(l) => {
            let addr = l.local_addr()?;
            println!("gatehouse metrics on http://{addr}/metrics");
            tracing::info!(%addr, "serving /metrics without authentication");
            let routes = gatehouse_server::metrics_router(app.clone());
            let limits = connections.clone();
            Some(tokio::spawn(gatehouse_server::serve(
                l,
                routes,
                limits,
                std::future::pending(),
            )))
        }
        None => None,
    };
    let addr = listener.local_addr()?;
    // Tests and scripts read this line to find a port chosen by the OS.
    println!("gatehouse listening on http://{addr}");
    tracing::info!(%addr, "listening");
    gatehouse_server::serve(listener, routes, connections, async move {
        shutdown_signal().await;
        tracing::info!("stopping: open waits answer now, then connections close");
        // Long-polls answer with the current state at once instead of
        // holding the shutdown for up to a minute.
        app.stop_waiting();
    })
    .await
    .context("server failed")?;
    sweeper.abort();
    deliveries.abort();
    background.shutdown_background();
    upkeep.abort();
    if let Some(m) = metrics_server {
        m.abort();
    }
    if let Some(watcher) = key_watcher {
        watcher.abort();
    }
    tracing::info!("stopped");
    Ok(())
}

fn max_wait(raw: &str) -> Result<Duration> {
    let wait = duration_flag("--max-wait", raw)?;
    if wait.as_secs() > gatehouse_app::MAX_WAIT_SECONDS {
        anyhow::bail!(
            "--max-wait {raw:?} is over {} seconds, the longest a wait may be",
            gatehouse_app::MAX_WAIT_SECONDS
        );
    }
    Ok(wait)
}

fn duration_flag(flag: &str, raw: &str) -> Result<Duration> {
    gatehouse_policy::parse_duration(raw)
        .with_context(|| format!("{flag} {raw:?} is not a duration like 30s, 10m, 24h or 7d"))
}

/// Raises the open-file limit as far as the system allows, and returns
/// how many connections fit under it: each connection is a descriptor, and
/// the database, the listeners and the key files need some of their own.
fn descriptors_for(wanted: usize) -> usize {
    const RESERVED: u64 = 256;
    let limit = match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot read or raise the open-file limit");
            return wanted;
        }
    };
    let fits = limit.saturating_sub(RESERVED).max(1) as usize;
    if wanted > fits {
        tracing::warn!(
            wanted,
            open_file_limit = limit,
            "--max-connections is above what the open-file limit allows; using {fits}"
        );
        return fits;
    }
    wanted
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
