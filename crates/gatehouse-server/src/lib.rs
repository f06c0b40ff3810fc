//! The Gatehouse HTTP API: a thin axum adapter over [`gatehouse_app::App`].
//! Handlers authenticate ([`auth::Auth`]), parse into the types of
//! `gatehouse-api`, call one use case, and shape the answer. All error
//! responses go through [`error::ApiError`]; the OpenAPI document is
//! generated from the same types and routes ([`openapi`]).

pub mod auth;
pub mod config;
mod duplicates;
pub mod error;
mod extract;
pub mod listen;
pub mod metrics;
mod observe;
pub mod openapi;
mod openapi_rules;
mod routes;

pub use config::ServerConfig;
pub use listen::{serve, ConnectionLimits};
pub use metrics::metrics_router;
pub use routes::router;
