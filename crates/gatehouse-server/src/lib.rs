//! The Gatehouse HTTP API: a thin axum adapter over [`gatehouse_app::App`].
//! Handlers authenticate ([`auth::Auth`]), parse, call one use case, and
//! shape the answer. All error responses go through [`error::ApiError`].

pub mod auth;
pub mod config;
pub mod error;
mod extract;
mod routes;
pub mod views;

pub use config::ServerConfig;
pub use routes::router;
