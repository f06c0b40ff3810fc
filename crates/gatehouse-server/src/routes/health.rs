use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::Gate;

/// Liveness: the process answers. Also the no-op baseline in benchmarks.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

/// Readiness: the database answers and a policy set is loaded.
pub async fn readyz(State(gate): State<Arc<Gate>>) -> Result<Json<Value>, ApiError> {
    gate.ready().await?;
    Ok(Json(json!({
        "status": "ready",
        "policy_version": gate.engine().version(),
        "policies": gate.engine().policy_count(),
    })))
}

pub async fn openapi() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "application/json")],
        include_str!("../openapi.json"),
    )
}

/// The authenticated no-op: who the key belongs to.
pub async fn whoami(caller: Caller) -> Json<Value> {
    Json(json!({"key_id": caller.key_id, "name": caller.name, "role": caller.role}))
}
