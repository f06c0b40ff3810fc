use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use gatehouse_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::service::Gate;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    role: Role,
    #[serde(default)]
    name: Option<String>,
}

pub async fn create_key(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let name = body.name.unwrap_or_else(|| body.role.as_str().to_string());
    if name.len() > 200 {
        return Err(ApiError::Validation(
            "name must be at most 200 characters".into(),
        ));
    }
    let new = gate.create_key(&caller, body.role, &name).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"key": new.key, "secret": new.secret, "note": "the secret is shown only once"}),
        ),
    ))
}

pub async fn list_keys(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": gate.list_keys(&caller).await?})))
}

pub async fn revoke_key(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    gate.revoke_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
