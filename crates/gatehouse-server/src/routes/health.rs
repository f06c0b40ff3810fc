use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use gatehouse_app::App;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;

/// Liveness: the process answers. Also the no-op baseline in benchmarks.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers and a policy set is loaded.
pub async fn readyz(State(app): State<Arc<App>>) -> Result<Json<Value>, ApiError> {
    app.ready().await?;
    Ok(Json(json!({
        "status": "ready",
        "policy_version": app.engine().version(),
        "policies": app.engine().policy_count(),
    })))
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// The authenticated no-op: who the key belongs to.
pub async fn whoami(Auth(caller): Auth) -> Json<Value> {
    Json(json!({"key_id": caller.key_id, "name": caller.name, "role": caller.role}))
}
