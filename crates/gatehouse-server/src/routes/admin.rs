use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use gatehouse_app::App;
use gatehouse_store::Role;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewKeyBody {
    role: Role,
    #[serde(default)]
    name: Option<String>,
}

pub async fn create_key(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = app.create_key(&caller, body.role, body.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"key": new.key, "secret": new.secret, "note": "the secret is shown only once"}),
        ),
    ))
}

pub async fn list_keys(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(json!({"items": app.list_keys(&caller).await?})))
}

pub async fn revoke_key(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    app.revoke_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
