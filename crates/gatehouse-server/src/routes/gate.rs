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
use gatehouse_app::decide::Decided;
use gatehouse_app::tasks::NewTaskEvent;
use gatehouse_app::{App, AppError, Caller, MAX_WAIT_SECONDS};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::views::GateView;

/// The Gate view, with the approval token when the caller may act on it.
async fn view(
    app: &App,
    caller: &Caller,
    d: &gatehouse_core::Decision,
) -> Result<GateView, ApiError> {
    let mut view = GateView::from(d);
    view.approval_token = app.approval_token(caller, d).await?;
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
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(task_id): Path<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<GateBody>,
) -> Result<(StatusCode, Json<GateView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request(task_id)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    Ok(created(app.decide(&caller, request, key).await?))
}

pub async fn create_sdk(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<SdkGateBody>,
) -> Result<(StatusCode, Json<GateView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request()
        .map_err(|e| AppError::Validation(e.to_string()))?;
    Ok(created(app.decide(&caller, request, key).await?))
}

pub async fn get_request(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<GateView>, ApiError> {
    let d = match query.get("wait") {
        None => app.get(&caller, &id).await?,
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
            app.wait(&caller, &id, Duration::from_secs(secs)).await?
        }
    };
    Ok(Json(view(&app, &caller, &d).await?))
}

pub async fn review(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<GateView>, ApiError> {
    let d = app
        .review(&caller, &id, body.decision, body.comment)
        .await?;
    Ok(Json(GateView::from(&d)))
}

pub async fn list(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
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
    let decisions = app.list(&caller, q).await?;
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
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(task_id): Path<String>,
    ApiJson(body): ApiJson<EventBody>,
) -> Result<(StatusCode, Json<TaskEvent>), ApiError> {
    let new = NewTaskEvent {
        task_id,
        kind: body.kind,
        message: body.message,
        decision_id: body.decision_id,
        data: body.data.unwrap_or(Value::Null),
    };
    Ok((
        StatusCode::CREATED,
        Json(app.add_event(&caller, new).await?),
    ))
}

pub async fn list_events(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(task_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let events = app.list_events(&caller, &task_id).await?;
    Ok(Json(json!({"items": events})))
}
