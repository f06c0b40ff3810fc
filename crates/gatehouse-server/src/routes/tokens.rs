use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use gatehouse_app::tokens::PresentedAction;
use gatehouse_app::App;
use jsonwebtoken::jwk::JwkSet;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// Public: executors verify approval tokens offline with these keys.
pub async fn jwks(State(app): State<Arc<App>>) -> Result<Json<JwkSet>, ApiError> {
    Ok(Json(app.jwks().await?))
}

/// The action about to run, in the fields the request carried.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionBody {
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
    action: ActionBody,
}

pub async fn redeem(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<RedeemBody>,
) -> Result<Json<Value>, ApiError> {
    let action = PresentedAction {
        action: body.action.tool_name,
        subject: body.action.subject,
        payload: body.action.payload.unwrap_or_default(),
    };
    let redeemed = app.redeem(&caller, &body.token, &action).await?;
    Ok(Json(json!({
        "redeemed": true,
        "decision_id": redeemed.claims.sub,
        "jti": redeemed.claims.jti,
        "action_hash": redeemed.claims.act,
        "log_index": redeemed.log_index,
    })))
}
