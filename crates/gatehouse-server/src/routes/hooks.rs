//! Private hooks for no-code tools: the admin API that manages them, and
//! `POST /hooks/{hook_id}`, where a tool asks with the hook's secret
//! instead of an API key and gets a route instruction back.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_api::error::{AlreadyExists, AuthErrors, BodyErrors, NotFound, ServerErrors};
use gatehouse_api::hooks::{HookCreated, HookList, HookView, NewHookBody, RouteInstruction};
use gatehouse_api::requests::DecideBody;
use gatehouse_app::hooks::HookCredential;
use gatehouse_app::{App, AppError};
use serde_json::Value;

use super::idempotency_key;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{parse_json, ApiJson, ApiPath, JsonBytes};

/// The header that carries a hook's secret.
pub const SECRET_HEADER: &str = "x-gatehouse-hook-secret";
/// The header that carries `sha256=<hex HMAC-SHA256 of the body>`.
pub const SIGNATURE_HEADER: &str = "x-gatehouse-signature";

/// Create a hook for a no-code tool: it may ask for decisions about one
/// workflow's listed actions and nothing else. The secret in the answer
/// is shown only once.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/hooks", tag = "hooks",
    request_body = NewHookBody,
    responses(
        (status = 201, description = "Created", body = HookCreated),
        AlreadyExists, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_hook(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<NewHookBody>,
) -> Result<(StatusCode, Json<HookCreated>), ApiError> {
    let new = app
        .create_hook(&caller, &body.name, &body.workflow, &body.actions)
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(HookCreated {
            hook: HookView::from(&new.hook),
            secret: new.secret,
        }),
    ))
}

/// List every hook, revoked ones included.
///
/// Roles: admin.
#[utoipa::path(get, path = "/api/hooks", tag = "hooks",
    responses((status = 200, description = "Every hook", body = HookList), AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_hooks(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<Json<HookList>, ApiError> {
    let items = app
        .list_hooks(&caller)
        .await?
        .iter()
        .map(HookView::from)
        .collect();
    Ok(Json(HookList { items }))
}

/// Revoke a hook: every replica refuses it from the next call on.
///
/// Roles: admin.
#[utoipa::path(delete, path = "/api/hooks/{id}", tag = "hooks",
    params(("id" = String, Path, description = "Hook id")),
    responses(
        (status = 200, description = "Revoked (revoking again keeps the first time)", body = HookView),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn revoke_hook(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<HookView>, ApiError> {
    let hook = app.revoke_hook(&caller, &id).await?;
    Ok(Json(HookView::from(&hook)))
}

/// Ask for a decision through a hook (n8n, Zapier, Make): the Decide
/// API's body, authenticated by the hook's secret in
/// `X-Gatehouse-Hook-Secret`, or by `X-Gatehouse-Signature:
/// sha256=<hex HMAC-SHA256 of the exact body with the secret>`.
/// `context.workflow` defaults to the hook's workflow. The answer is a
/// route instruction: `proceed`, `block` or `review`.
///
/// A workflow or action outside the hook's scope is a 403
/// `out_of_scope` and nothing is stored; an unknown or revoked hook, or a
/// wrong secret, is a 401. Each hook has its own rate limit.
#[utoipa::path(post, path = "/hooks/{hook_id}", tag = "hooks",
    params(
        ("hook_id" = String, Path, description = "Hook id"),
        ("X-Gatehouse-Hook-Secret" = Option<String>, Header, description = "The hook's secret (`ghh_…`)"),
        ("X-Gatehouse-Signature" = Option<String>, Header, description = "`sha256=` and the hex HMAC-SHA256 of the body, keyed with the secret"),
        ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body return the original decision")),
    request_body = DecideBody,
    responses(
        (status = 200, description = "The route to take, with the decision's handles", body = RouteInstruction),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body", body = gatehouse_api::ErrorBody),
        BodyErrors, AuthErrors, ServerErrors),
    security(()))]
pub async fn ask(
    State(app): State<Arc<App>>,
    ApiPath(hook_id): ApiPath<String>,
    headers: HeaderMap,
    JsonBytes(bytes): JsonBytes,
) -> Result<Json<RouteInstruction>, ApiError> {
    let header = |name: &str| -> Result<Option<&str>, ApiError> {
        headers
            .get(name)
            .map(|v| {
                v.to_str()
                    .map_err(|_| ApiError::App(AppError::HookUnauthorized))
            })
            .transpose()
    };
    let credential = match (header(SECRET_HEADER)?, header(SIGNATURE_HEADER)?) {
        (Some(secret), _) => Some(HookCredential::Secret(secret)),
        (None, Some(signature)) => Some(HookCredential::Signature {
            signature,
            body: &bytes,
        }),
        (None, None) => None,
    };
    let hook = app.authenticate_hook(&hook_id, credential).await?;
    // The tool need not repeat the workflow its hook is for.
    let mut value: Value = parse_json(&bytes)?;
    if let Some(context) = value.get_mut("context").and_then(Value::as_object_mut) {
        context
            .entry("workflow")
            .or_insert_with(|| Value::String(hook.workflow.clone()));
    }
    let mut body: DecideBody =
        serde_json::from_value(value).map_err(|e| AppError::Validation(e.to_string()))?;
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request()
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let decided = app.hook_decide(&hook, request, key).await?;
    Ok(Json(RouteInstruction::new(&decided.decision)))
}
