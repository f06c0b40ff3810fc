//! The service itself: liveness, readiness, the API document, and who a
//! key belongs to.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use gatehouse_api::error::{AuthErrors, ServerErrors};
use gatehouse_api::records::{Health, Ready, WhoAmI};
use gatehouse_app::App;

use crate::auth::Auth;
use crate::error::ApiError;

/// Liveness: the process answers. Also the no-op baseline in benchmarks.
#[utoipa::path(get, path = "/healthz", tag = "service",
    responses((status = 200, description = "Alive", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

/// Readiness: the database answers, its schema is usable, and a policy
/// set is loaded.
#[utoipa::path(get, path = "/readyz", tag = "service",
    responses((status = 200, description = "Ready to decide", body = Ready), ServerErrors))]
pub async fn readyz(State(app): State<Arc<App>>) -> Result<Json<Ready>, ApiError> {
    app.ready().await?;
    Ok(Json(Ready {
        status: "ready".into(),
        policy_version: app.engine().version().to_string(),
        policies: app.engine().policy_count(),
    }))
}

/// This document (OpenAPI 3.1), generated from the server's own types.
#[utoipa::path(get, path = "/openapi.json", tag = "service",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object)))]
pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        crate::openapi::json(),
    )
}

/// The authenticated no-op: who the key belongs to.
#[utoipa::path(get, path = "/api/whoami", tag = "service",
    responses((status = 200, description = "The key's owner", body = WhoAmI), AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn whoami(Auth(caller): Auth) -> Json<WhoAmI> {
    Json(WhoAmI {
        key_id: caller.key_id,
        name: caller.name,
        role: caller.role,
    })
}
