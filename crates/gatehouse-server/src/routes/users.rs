//! People and groups over HTTP (the CLI's `gatehouse users` works on the
//! database).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gatehouse_api::bodies::{GroupsBody, NewUserBody, PasswordBody};
use gatehouse_api::error::{AlreadyExists, AuthErrors, BodyErrors, NotFound, ServerErrors};
use gatehouse_api::records::{UserList, UserView};
use gatehouse_app::App;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

/// Create a user (a reviewer, auditor or admin who signs in to the
/// console); the password is stored only as an Argon2id hash.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/users", tag = "users",
    request_body = NewUserBody,
    responses(
        (status = 201, description = "Created", body = UserView),
        AlreadyExists, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_user(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<NewUserBody>,
) -> Result<(StatusCode, Json<UserView>), ApiError> {
    let user = app.create_user(&caller, body.into()).await?;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}

/// List users with their groups.
///
/// Roles: admin.
#[utoipa::path(get, path = "/api/users", tag = "users",
    responses((status = 200, description = "Every user", body = UserList), AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_users(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<Json<UserList>, ApiError> {
    let items = app
        .list_users(&caller)
        .await?
        .iter()
        .map(UserView::from)
        .collect();
    Ok(Json(UserList { items }))
}

/// Show one user.
///
/// Roles: admin.
#[utoipa::path(get, path = "/api/users/{name}", tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, description = "The user", body = UserView), NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_user(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(&app.get_user(&caller, &name).await?)))
}

/// Disable a user: no more sign-ins, and their keys stop working within
/// seconds on every replica. Disabling twice keeps the first time.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/users/{name}/disable", tag = "users",
    params(("name" = String, Path, description = "User name")),
    responses((status = 200, description = "The user, disabled", body = UserView), NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn disable_user(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(name): ApiPath<String>,
) -> Result<Json<UserView>, ApiError> {
    Ok(Json(UserView::from(
        &app.disable_user(&caller, &name).await?,
    )))
}

/// Replace a user's groups.
///
/// Roles: admin.
#[utoipa::path(put, path = "/api/users/{name}/groups", tag = "users",
    params(("name" = String, Path, description = "User name")),
    request_body = GroupsBody,
    responses((status = 200, description = "The user", body = UserView), NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn set_groups(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<GroupsBody>,
) -> Result<Json<UserView>, ApiError> {
    let user = app.set_user_groups(&caller, &name, body.groups).await?;
    Ok(Json(UserView::from(&user)))
}

/// Set a user's password.
///
/// Roles: admin.
#[utoipa::path(put, path = "/api/users/{name}/password", tag = "users",
    params(("name" = String, Path, description = "User name")),
    request_body = PasswordBody,
    responses((status = 204, description = "Changed"), NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn set_password(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<PasswordBody>,
) -> Result<StatusCode, ApiError> {
    app.set_user_password(&caller, &name, body.password).await?;
    Ok(StatusCode::NO_CONTENT)
}
