//! Approval tokens: the public keys, and single-use redemption.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use gatehouse_api::bodies::RedeemBody;
use gatehouse_api::error::{AuthErrors, BodyErrors, ServerErrors};
use gatehouse_api::records::{Jwks, Redeemed};
use gatehouse_api::ErrorBody;
use gatehouse_app::App;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// The public keys approval tokens are verified with (JWKS).
///
/// Public: executors verify tokens offline with these keys. A replaced key
/// stays listed while any token it signed is unexpired.
#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "tokens",
    responses((status = 200, description = "The key set", body = Jwks), ServerErrors))]
pub async fn jwks(State(app): State<Arc<App>>) -> Result<Json<Jwks>, ApiError> {
    let set = app.jwks().await?;
    let keys = set
        .keys
        .iter()
        .map(serde_json::to_value)
        .collect::<Result<_, _>>()
        .map_err(|e| gatehouse_app::AppError::Internal(format!("JWK: {e}")))?;
    Ok(Json(Jwks { keys }))
}

/// Redeem an approval token for the action about to run, once.
///
/// Checks signature, time window, audience, that the action is the
/// approved one, the decision's state, and single use (across replicas).
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/tokens/redeem", tag = "tokens",
    request_body = RedeemBody,
    responses(
        (status = 200, description = "Redeemed and logged", body = Redeemed),
        (status = 409, description = "`token_already_redeemed` (the log records a redemption), or `evidence_mismatch` (the decision's row is not what its log says; it is flagged)", body = ErrorBody),
        (status = 400, description = "`token_rejected`: the message names the failed check", body = ErrorBody),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn redeem(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<Redeemed>, ApiError> {
    let action = body.action.into();
    let redeemed = app.redeem(&caller, &body.token, &action).await?;
    Ok(Json(Redeemed {
        redeemed: true,
        decision_id: redeemed.claims.sub,
        jti: redeemed.claims.jti,
        action_hash: redeemed.claims.act,
        log_index: redeemed.log_index,
    }))
}
