//! API keys over HTTP (the CLI's `gatehouse keys` works on the database).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gatehouse_api::bodies::NewKeyBody;
use gatehouse_api::error::{AuthErrors, BodyErrors, LastAdmin, NotFound, ServerErrors};
use gatehouse_api::records::{KeyCreated, KeyList, KeyView};
use gatehouse_app::App;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

/// Create an API key; its secret is in the answer, once.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/keys", tag = "keys",
    request_body = NewKeyBody,
    responses(
        (status = 201, description = "Created", body = KeyCreated),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_key(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<NewKeyBody>,
) -> Result<(StatusCode, Json<KeyCreated>), ApiError> {
    let new = app
        .create_key(&caller, body.role, body.name, body.user)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(KeyCreated {
            key: KeyView::from(&new.key),
            secret: new.secret,
            note: "the secret is shown only once".into(),
        }),
    ))
}

/// List API keys (never their secrets).
///
/// Roles: admin.
#[utoipa::path(get, path = "/api/keys", tag = "keys",
    responses((status = 200, description = "Every key", body = KeyList), AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_keys(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<Json<KeyList>, ApiError> {
    let items = app
        .list_keys(&caller)
        .await?
        .iter()
        .map(KeyView::from)
        .collect();
    Ok(Json(KeyList { items }))
}

/// Revoke an API key; every replica stops accepting it within seconds.
///
/// Roles: admin.
#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys",
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Revoked"), NotFound, LastAdmin, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn revoke_key(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.revoke_key(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
