use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_app::evidence::ReplayPolicies;
use gatehouse_app::App;
use gatehouse_core::DecideBody;
use gatehouse_log::packet::Packet;
use serde_json::{json, Value};

use super::{idempotency_key, ReviewBody};
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::views::{RecordView, ReplayView};
use gatehouse_app::AppError;

pub async fn decide(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<DecideBody>,
) -> Result<(StatusCode, Json<RecordView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request()
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let decided = app.decide(&caller, request, key).await?;
    let status = if decided.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    // The checkpoint committed with the decision covers it; read the latest
    // only when the store did not hand one back (an idempotent replay).
    let checkpoint = match decided.checkpoint {
        Some(c) => Some(c),
        None => app.checkpoint().await?,
    };
    let mut view = RecordView::with_receipt(&decided.decision, checkpoint, decided.receipt_hash);
    view.approval_token = decided.approval_token;
    Ok((status, Json(view)))
}

pub async fn get_record(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<RecordView>, ApiError> {
    let d = app.get(&caller, &id).await?;
    let mut view = RecordView::new(&d, app.checkpoint().await?);
    view.approval_token = app.approval_token(&caller, &d).await?;
    Ok(Json(view))
}

pub async fn review(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<RecordView>, ApiError> {
    let d = app
        .review(&caller, &id, body.decision, body.comment)
        .await?;
    Ok(Json(RecordView::new(&d, app.checkpoint().await?)))
}

pub async fn verify(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let checks = app.verify(&caller, &id).await?;
    let valid = checks.iter().all(|c| c.ok);
    Ok(Json(
        json!({"decision_id": id, "valid": valid, "checks": checks}),
    ))
}

pub async fn packet(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Packet>, ApiError> {
    Ok(Json(app.packet(&caller, &id).await?))
}

pub async fn replay(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ReplayView>, ApiError> {
    let policies = match query.get("policies").map(String::as_str) {
        None | Some("recorded") => ReplayPolicies::Recorded,
        Some("current") => ReplayPolicies::Current,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "policies must be \"recorded\" or \"current\" (got {other:?})"
            )))
        }
    };
    Ok(Json(ReplayView::from(
        app.replay(&caller, &id, policies).await?,
    )))
}
