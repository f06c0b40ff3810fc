//! Picks up a rotated approval-token key while the server runs.
//!
//! `gatehouse keys rotate` (or a secret store) replaces the key file in
//! place; each server re-reads it on a timer and on SIGHUP, so a rotation
//! needs no restart. Until a server has re-read the file it signs with the
//! old key, which is harmless: the rotation recorded the old key as
//! retired, and the JWKS keeps a retired key while any token it signed is
//! unexpired.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use gatehouse_app::App;
use gatehouse_token::TokenSigner;

/// Parses `--token-key-reload`: a duration such as 10s, or `off`.
pub fn parse_interval(raw: &str) -> Result<Option<Duration>> {
    if raw.trim().eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    gatehouse_policy::parse_duration(raw)
        .map(Some)
        .with_context(|| format!("--token-key-reload {raw:?} is not a duration like 10s, or off"))
}

/// Re-reads `path` every `interval` (if any) and on SIGHUP for as long as
/// the server runs.
pub fn spawn(
    app: Arc<App>,
    path: PathBuf,
    interval: Option<Duration>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut hangup = Hangup::listen();
        let mut tick = interval.map(|every| {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick
        });
        // The same failure is reported once, not on every tick.
        let mut last_error = String::new();
        loop {
            tokio::select! {
                _ = next_tick(&mut tick) => {}
                _ = hangup.next() => tracing::info!("SIGHUP: re-reading the token key file"),
            }
            match reload(&app, &path).await {
                Ok(_) => last_error.clear(),
                Err(e) => {
                    let message = format!("{e:#}");
                    if message != last_error {
                        tracing::error!(
                            error = %message,
                            "cannot use the token key file; approval tokens stay signed with the key in force"
                        );
                        last_error = message;
                    }
                }
            }
        }
    })
}

/// The next tick, or never when re-reading on a timer is off.
async fn next_tick(tick: &mut Option<tokio::time::Interval>) {
    match tick {
        Some(tick) => {
            tick.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Puts the key in `path` in force if it is not already; returns whether
/// it changed.
async fn reload(app: &App, path: &Path) -> Result<bool> {
    let text = tokio::fs::read_to_string(path)
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let signer = TokenSigner::from_pem(&text)
        .with_context(|| format!("{} does not hold an Ed25519 PKCS#8 key", path.display()))?;
    app.replace_token_key(Arc::new(signer))
        .await
        .map_err(|e| anyhow::anyhow!("cannot retire the old token key: {e}"))
}

/// SIGHUP, where the platform has it.
struct Hangup {
    #[cfg(unix)]
    signal: Option<tokio::signal::unix::Signal>,
}

impl Hangup {
    fn listen() -> Self {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            let signal = signal(SignalKind::hangup())
                .map_err(|e| tracing::warn!(error = %e, "cannot listen for SIGHUP"))
                .ok();
            Hangup { signal }
        }
        #[cfg(not(unix))]
        Hangup {}
    }

    /// The next SIGHUP, or never where none can arrive.
    async fn next(&mut self) {
        #[cfg(unix)]
        if let Some(signal) = &mut self.signal {
            if signal.recv().await.is_some() {
                return;
            }
        }
        std::future::pending().await
    }
}
