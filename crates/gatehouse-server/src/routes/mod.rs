mod admin;
mod decide;
mod executions;
mod gate;
mod health;
mod log;
mod tokens;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::Router;
use gatehouse_app::App;

use crate::config::ServerConfig;
use crate::error::ApiError;

pub fn router(app: Arc<App>, config: ServerConfig) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/openapi.json", get(health::openapi))
        .route("/api/whoami", get(health::whoami))
        .route(
            "/api/agent/tasks/{task_id}/requests",
            post(gate::create_for_task),
        )
        .route(
            "/api/agent/tasks/{task_id}/events",
            post(gate::add_event).get(gate::list_events),
        )
        .route("/api/gate/requests", post(gate::create_sdk))
        .route("/api/gate/requests/{id}", get(gate::get_request))
        .route("/api/gate/requests/{id}/review", post(gate::review))
        .route("/api/decisions", get(gate::list))
        .route(
            "/api/decision/{id}/executions",
            post(executions::record_execution).get(executions::list),
        )
        .route(
            "/api/decision/{id}/outcomes",
            post(executions::record_outcome),
        )
        .route(
            "/api/gate/requests/{id}/executions",
            post(executions::record_execution).get(executions::list),
        )
        .route(
            "/api/gate/requests/{id}/outcomes",
            post(executions::record_outcome),
        )
        .route("/api/decide", post(decide::decide))
        .route("/api/decision/{id}", get(decide::get_record))
        .route("/api/decision/{id}/review", post(decide::review))
        .route("/api/decision/{id}/verify", get(decide::verify))
        .route("/api/decision/{id}/replay", get(decide::replay))
        .route("/api/decision/{id}/packet", get(decide::packet))
        .route("/.well-known/jwks.json", get(tokens::jwks))
        .route("/api/tokens/redeem", post(tokens::redeem))
        .route("/api/log/checkpoint", get(log::checkpoint))
        .route("/api/log/key", get(log::key))
        .route("/api/log/proof/inclusion", get(log::inclusion))
        .route("/api/log/proof/consistency", get(log::consistency))
        .route("/api/keys", get(admin::list_keys).post(admin::create_key))
        .route("/api/keys/{id}", delete(admin::revoke_key))
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(config.body_limit))
        // Method, path, status and latency at debug level (GATEHOUSE_LOG);
        // headers, and so API keys, are never recorded.
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(app)
}

/// The idempotency key from the `Idempotency-Key` header or the body; both
/// may be given only if they agree.
fn idempotency_key(
    headers: &HeaderMap,
    from_body: Option<String>,
) -> Result<Option<String>, ApiError> {
    let header = match headers.get("idempotency-key") {
        Some(v) => Some(
            v.to_str()
                .map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".into()))?
                .to_string(),
        ),
        None => None,
    };
    match (header, from_body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::BadRequest(
            "Idempotency-Key header and idempotency_key field differ".into(),
        )),
        (Some(h), _) => Ok(Some(h)),
        (None, b) => Ok(b),
    }
}

/// Review bodies are the same on both API shapes.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewBody {
    decision: gatehouse_core::ReviewChoice,
    #[serde(default)]
    comment: Option<String>,
}
