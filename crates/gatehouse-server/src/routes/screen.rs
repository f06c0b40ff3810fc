//! Screening actions against the policies in force.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use gatehouse_api::error::{AuthErrors, BodyErrors, ServerErrors};
use gatehouse_api::screen::{ScreenBody, ScreenView};
use gatehouse_app::App;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// Which actions the policies in force reject for an agent whatever the
/// subject and payload: a decide-tier `forbid` without conditions that
/// covers every subject, or no `permit` that could apply. Stores nothing;
/// every other action is decided when it is asked. The MCP proxy's
/// `--hide-rejected` uses it to leave such tools out of a tool list.
///
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/policies/always-rejected", tag = "gate",
    request_body = ScreenBody,
    responses(
        (status = 200, description = "The actions that can never be allowed, in the order named", body = ScreenView),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn always_rejected(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<ScreenBody>,
) -> Result<Json<ScreenView>, ApiError> {
    let (policy_version, always_rejected) =
        app.always_rejected(&caller, body.agent, body.actions)?;
    Ok(Json(ScreenView {
        policy_version,
        always_rejected,
    }))
}
