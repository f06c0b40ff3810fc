//! The Gatehouse HTTP API. Handlers are thin: they authenticate, parse,
//! call [`service::Gate`], and shape the answer. All error responses go
//! through [`error::ApiError`].

pub mod auth;
pub mod config;
pub mod error;
mod extract;
pub mod policies;
mod routes;
pub mod service;
pub mod views;

use std::sync::Arc;

pub use config::ServerConfig;
pub use routes::router;
pub use service::Gate;

/// Starts the background work a server needs besides answering requests:
/// the expiry sweeper. Returns its handle so callers can stop it.
pub fn spawn_background(gate: Arc<Gate>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(gate.config().sweep_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            gate.sweep().await;
        }
    })
}
