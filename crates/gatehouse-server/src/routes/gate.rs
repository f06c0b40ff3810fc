use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_core::{GateBody, SdkGateBody, Status, TaskEvent};
use gatehouse_store::DecisionQuery;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{idempotency_key, ReviewBody};
use crate::auth::Caller;
use crate::config::MAX_WAIT_SECONDS;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::service::{Decided, Gate};
use crate::views::GateView;

/// The Gate view, with the approval token when the caller may act on it.
async fn view(
    gate: &Gate,
    caller: &Caller,
    d: &gatehouse_core::Decision,
) -> Result<GateView, ApiError> {
    let mut view = GateView::from(d);
    view.approval_token = gate.approval_token(caller, d).await?;
    Ok(view)
}

fn created(decided: Decided) -> (StatusCode, Json<GateView>) {
    let status = if decided.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut view = GateView::with_receipt(&decided.decision, decided.receipt_hash);
    view.approval_token = decided.approval_token;
    (status, Json(view))
}

pub async fn create_for_task(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<GateBody>,
) -> Result<(StatusCode, Json<GateView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request(task_id)
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    Ok(created(gate.decide(&caller, request, key).await?))
}

pub async fn create_sdk(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<SdkGateBody>,
) -> Result<(StatusCode, Json<GateView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request()
        .map_err(|e| ApiError::Validation(e.to_string()))?;
    Ok(created(gate.decide(&caller, request, key).await?))
}

pub async fn get_request(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<GateView>, ApiError> {
    let d = match query.get("wait") {
        None => gate.get(&caller, &id).await?,
        Some(raw) => {
            let secs: u64 = raw.parse().map_err(|_| {
                ApiError::BadRequest(format!(
                    "wait must be a whole number of seconds (got {raw:?})"
                ))
            })?;
            if secs > MAX_WAIT_SECONDS {
                return Err(ApiError::BadRequest(format!(
                    "wait may be at most {MAX_WAIT_SECONDS} seconds"
                )));
            }
            gate.wait(&caller, &id, Duration::from_secs(secs)).await?
        }
    };
    Ok(Json(view(&gate, &caller, &d).await?))
}

pub async fn review(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<GateView>, ApiError> {
    let d = gate
        .review(&caller, &id, body.decision, body.comment)
        .await?;
    Ok(Json(GateView::from(&d)))
}

pub async fn list(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let status = match query.get("status") {
        None => None,
        Some(s) => Some(
            Status::parse(s)
                .ok_or_else(|| ApiError::BadRequest(format!("unknown status {s:?}")))?,
        ),
    };
    let limit = match query.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<u32>()
            .ok()
            .filter(|l| (1..=500).contains(l))
            .ok_or_else(|| ApiError::BadRequest("limit must be between 1 and 500".into()))?,
    };
    let q = DecisionQuery {
        status,
        task_id: query.get("task_id").cloned(),
        before: query.get("before").cloned(),
        limit,
    };
    let decisions = gate.list(&caller, q).await?;
    let next = (decisions.len() == limit as usize)
        .then(|| decisions.last().map(|d| d.id.clone()))
        .flatten();
    let items: Vec<GateView> = decisions.iter().map(GateView::from).collect();
    Ok(Json(json!({"items": items, "next_before": next})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    #[serde(alias = "event", alias = "type")]
    kind: String,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    decision_id: Option<String>,
    #[serde(default)]
    data: Option<Value>,
}

pub async fn add_event(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(task_id): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<TaskEvent>), ApiError> {
    if body.kind.trim().is_empty() || body.kind.len() > 100 {
        return Err(ApiError::Validation(
            "kind must be 1 to 100 characters".into(),
        ));
    }
    if body.message.as_ref().is_some_and(|m| m.len() > 4000) {
        return Err(ApiError::Validation(
            "message must be at most 4000 characters".into(),
        ));
    }
    let event = TaskEvent {
        id: String::new(),
        task_id,
        decision_id: body.decision_id,
        kind: body.kind,
        message: body.message,
        data: body.data.unwrap_or(Value::Null),
        created_by: String::new(),
        created_at: time::OffsetDateTime::UNIX_EPOCH,
    };
    let stored = gate.add_event(&caller, event).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

pub async fn list_events(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let events = gate.list_events(&caller, &task_id).await?;
    Ok(Json(json!({"items": events})))
}
