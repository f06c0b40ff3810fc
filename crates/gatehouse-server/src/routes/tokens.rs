use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::service::Gate;

/// Public: executors verify approval tokens offline with these keys.
pub async fn jwks(State(gate): State<Arc<Gate>>) -> Result<Json<JwkSet>, ApiError> {
    Ok(Json(gate.jwks().await?))
}

/// The action about to run, in the fields the request carried.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresentedAction {
    #[serde(alias = "action")]
    tool_name: String,
    subject: String,
    #[serde(default)]
    payload: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedeemBody {
    token: String,
    action: PresentedAction,
}

pub async fn redeem(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<Value>, ApiError> {
    let payload = body.action.payload.unwrap_or_default();
    let (claims, log_index) = gate
        .redeem(
            &caller,
            &body.token,
            &body.action.tool_name,
            &body.action.subject,
            &payload,
        )
        .await?;
    Ok(Json(json!({
        "redeemed": true,
        "decision_id": claims.sub,
        "jti": claims.jti,
        "action_hash": claims.act,
        "log_index": log_index,
    })))
}
