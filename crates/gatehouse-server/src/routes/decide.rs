use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_core::DecideBody;
use serde_json::{json, Value};

use super::{idempotency_key, ReviewBody};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::service::{Gate, ReplayReport};
use crate::views::RecordView;

pub async fn decide(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<DecideBody>,
) -> Result<(StatusCode, Json<RecordView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request()
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    let decided = gate.decide(&caller, request, key).await?;
    let status = if decided.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    // The checkpoint committed with the decision covers it; read the latest
    // only when the store did not hand one back (an idempotent replay).
    let checkpoint = match decided.checkpoint {
        Some(c) => Some(c),
        None => gate.checkpoint().await?,
    };
    let mut view = RecordView::with_receipt(&decided.decision, checkpoint, decided.receipt_hash);
    view.approval_token = decided.approval_token;
    Ok((status, Json(view)))
}

pub async fn get_record(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<RecordView>, ApiError> {
    let d = gate.get(&caller, &id).await?;
    let mut view = RecordView::new(&d, gate.checkpoint().await?);
    view.approval_token = gate.approval_token(&caller, &d).await?;
    Ok(Json(view))
}

pub async fn review(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<RecordView>, ApiError> {
    let d = gate
        .review(&caller, &id, body.decision, body.comment)
        .await?;
    Ok(Json(RecordView::new(&d, gate.checkpoint().await?)))
}

pub async fn verify(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let checks = gate.verify(&caller, &id).await?;
    let valid = checks.iter().all(|c| c.ok);
    Ok(Json(
        json!({"decision_id": id, "valid": valid, "checks": checks}),
    ))
}

pub async fn packet(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<gatehouse_log::packet::Packet>, ApiError> {
    Ok(Json(gate.packet(&caller, &id).await?))
}

pub async fn replay(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<ReplayReport>, ApiError> {
    let current = match query.get("policies").map(String::as_str) {
        None | Some("recorded") => false,
        Some("current") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "policies must be \"recorded\" or \"current\" (got {other:?})"
            )))
        }
    };
    Ok(Json(gate.replay(&caller, &id, current).await?))
}
