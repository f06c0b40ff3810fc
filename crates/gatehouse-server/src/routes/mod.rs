mod admin;
mod decide;
mod executions;
mod gate;
mod health;
mod hooks;
mod log;
mod notifications;
mod screen;
mod tokens;
mod users;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::HeaderMap;
use axum::routing::post;
use axum::Router;
use gatehouse_app::App;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::ServerConfig;
use crate::error::ApiError;

/// Paths that serve exactly what another path serves (alias, original):
/// the Gate API's receipt and outcome endpoints. The document describes
/// them by copying the original's description (see `crate::openapi`).
pub(crate) const ALIASES: [(&str, &str); 2] = [
    (
        "/api/gate/requests/{id}/executions",
        "/api/decision/{id}/executions",
    ),
    (
        "/api/gate/requests/{id}/outcomes",
        "/api/decision/{id}/outcomes",
    ),
];

/// Every route with its OpenAPI description. Only routes registered here
/// exist, so the document and the server cannot disagree.
pub(crate) fn documented() -> OpenApiRouter<Arc<App>> {
    OpenApiRouter::with_openapi(crate::openapi::base())
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::openapi))
        .routes(routes!(health::whoami))
        .routes(routes!(crate::metrics::metrics))
        .routes(routes!(gate::create_for_task))
        .routes(routes!(gate::add_event, gate::list_events))
        .routes(routes!(gate::create_sdk))
        .routes(routes!(gate::get_request))
        .routes(routes!(gate::review))
        .routes(routes!(gate::list))
        .routes(routes!(screen::always_rejected))
        .routes(routes!(executions::record_execution, executions::list))
        .routes(routes!(executions::record_outcome))
        .route(
            ALIASES[0].0,
            post(executions::record_execution).get(executions::list),
        )
        .route(ALIASES[1].0, post(executions::record_outcome))
        .routes(routes!(decide::decide))
        .routes(routes!(decide::get_record))
        .routes(routes!(decide::review))
        .routes(routes!(decide::verify))
        .routes(routes!(decide::replay))
        .routes(routes!(decide::packet))
        .routes(routes!(tokens::jwks))
        .routes(routes!(tokens::redeem))
        .routes(routes!(log::checkpoint))
        .routes(routes!(log::key))
        .routes(routes!(log::inclusion))
        .routes(routes!(log::consistency))
        .routes(routes!(admin::list_keys, admin::create_key))
        .routes(routes!(admin::revoke_key))
        .routes(routes!(users::list_users, users::create_user))
        .routes(routes!(users::get_user))
        .routes(routes!(users::disable_user))
        .routes(routes!(users::set_groups))
        .routes(routes!(users::set_password))
        .routes(routes!(
            notifications::list_webhooks,
            notifications::create_webhook
        ))
        .routes(routes!(notifications::delete_webhook))
        .routes(routes!(notifications::list_deliveries))
        .routes(routes!(notifications::get_delivery))
        .routes(routes!(notifications::retry_delivery))
        .routes(routes!(hooks::list_hooks, hooks::create_hook))
        .routes(routes!(hooks::revoke_hook))
        .routes(routes!(hooks::ask))
}

pub fn router(app: Arc<App>, config: ServerConfig) -> Router {
    // Metrics recorded from now on are collected for /metrics.
    crate::metrics::handle();
    let (routes, _) = documented().split_for_parts();
    routes
        .fallback(|| async { ApiError::RouteNotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(DefaultBodyLimit::max(config.body_limit))
        .layer(axum::middleware::from_fn_with_state(
            config.body_timeout,
            crate::extract::body_deadline,
        ))
        // Oversized heads, and NUL (which PostgreSQL cannot store, so it is
        // refused alike on both stores).
        .layer(axum::middleware::from_fn(crate::extract::refuse_unfit_head))
        // A request id on every log line, header and error body; method,
        // route, status and latency as metrics and (at debug level) in the
        // log. Headers, and so API keys, are never recorded.
        .layer(axum::middleware::from_fn(crate::observe::observe))
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
