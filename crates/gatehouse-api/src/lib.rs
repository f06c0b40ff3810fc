//! Gatehouse's wire contract. Every request body, response body, query
//! string and error the HTTP API speaks is a type here; the server, the
//! CLI's client and the tests share them, and the OpenAPI document is
//! derived from them (`gatehouse-server` assembles it with the routes).
//! Conversions between these shapes and the application's commands and
//! results live here too, so adapters stay thin.

pub mod bodies;
pub mod error;
pub mod hooks;
pub mod notifications;
pub mod progress;
pub mod queries;
pub mod records;
pub mod requests;
pub mod screen;
pub mod views;

pub use error::{ErrorBody, ErrorDetail};
