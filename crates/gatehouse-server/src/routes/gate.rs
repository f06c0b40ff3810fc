//! The Gate API: requests (task and SDK shapes), reading and waiting,
//! review, the decision list, and task events.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_api::bodies::{EventBody, ReviewBody};
use gatehouse_api::error::{AuthErrors, BodyErrors, EvidenceMismatch, NotFound, ServerErrors};
use gatehouse_api::queries::{ListQuery, WaitQuery};
use gatehouse_api::requests::{GateBody, SdkGateBody};
use gatehouse_api::views::{DecisionList, EventList, GateView};
use gatehouse_api::ErrorBody;
use gatehouse_app::decide::Decided;
use gatehouse_app::tasks::NewTaskEvent;
use gatehouse_app::{App, AppError, Caller, MAX_WAIT_SECONDS};
use gatehouse_core::TaskEvent;
use gatehouse_store::DecisionQuery;
use serde_json::Value;

use super::idempotency_key;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

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

/// Ask for a decision (Gate API).
///
/// Answers `allow`, `reject` or `pending_review` from the policies in
/// force. Roles: agent, admin.
#[utoipa::path(post, path = "/api/agent/tasks/{task_id}/requests", tag = "gate",
    params(("task_id" = String, Path, description = "Your task or run id"),
           ("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body return the original decision")),
    request_body = GateBody,
    responses(
        (status = 201, description = "Decided", body = GateView),
        (status = 200, description = "The decision an earlier request with this Idempotency-Key made", body = GateView),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body; `evidence_mismatch`: the earlier decision's row is not what its log says", body = ErrorBody),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_for_task(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(task_id): ApiPath<String>,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<GateBody>,
) -> Result<(StatusCode, Json<GateView>), ApiError> {
    let key = idempotency_key(&headers, body.idempotency_key.take())?;
    let request = body
        .into_request(task_id)
        .map_err(|e| AppError::Validation(e.to_string()))?;
    Ok(created(app.decide(&caller, request, key).await?))
}

/// Ask for a decision (SDK field names).
///
/// The same request as the Gate API with `agent`, `action`, `risk`,
/// `subject` and `context`. Roles: agent, admin.
#[utoipa::path(post, path = "/api/gate/requests", tag = "gate",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body return the original decision")),
    request_body = SdkGateBody,
    responses(
        (status = 201, description = "Decided", body = GateView),
        (status = 200, description = "The decision an earlier request with this Idempotency-Key made", body = GateView),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body; `evidence_mismatch`: the earlier decision's row is not what its log says", body = ErrorBody),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
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

/// The largest `wait` accepted (and capped); a larger one is a mistake.
const MAX_WAIT_PARAMETER: u64 = 86_400;

/// Read a decision; `?wait=N` long-polls while it is pending.
///
/// With `wait`, answers as soon as the decision leaves `pending_review`,
/// or after `wait` seconds (at most 60) with the current state. Roles:
/// any (agents: their own decisions).
#[utoipa::path(get, path = "/api/gate/requests/{id}", tag = "gate",
    params(("id" = String, Path, description = "Decision id"), WaitQuery),
    responses(
        (status = 200, description = "The decision now", body = GateView),
        EvidenceMismatch, NotFound, (status = 400, description = "`bad_request`: wait is not a number", body = ErrorBody),
        AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_request(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<WaitQuery>,
) -> Result<Json<GateView>, ApiError> {
    let d = match query.wait {
        None => app.get(&caller, &id).await?,
        Some(secs) if secs > MAX_WAIT_PARAMETER => {
            return Err(ApiError::BadRequest(format!(
                "wait must be at most {MAX_WAIT_PARAMETER} seconds"
            )))
        }
        Some(secs) => {
            let secs = secs.min(MAX_WAIT_SECONDS);
            app.wait(&caller, &id, Duration::from_secs(secs)).await?
        }
    };
    Ok(Json(view(&app, &caller, &d).await?))
}

/// Approve, approve with changes (`amended_payload`), or reject a
/// pending decision.
///
/// Roles: reviewer, never on a request its own key or person made
/// (403 `self_review_forbidden`), and only in a group the decision's
/// requirements allow (403 `not_eligible`). A decision that needs several
/// approvals stays `pending_review` until every requirement is met; see
/// `review_progress`. An amendment the policies reject is a 422
/// `amendment_rejected` with `error.reasons`.
#[utoipa::path(post, path = "/api/gate/requests/{id}/review", tag = "gate", operation_id = "review_request",
    params(("id" = String, Path, description = "Decision id")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "Reviewed", body = GateView),
        (status = 409, description = "`not_pending`: already resolved or expired; `already_reviewed`: this person already approved this action", body = ErrorBody),
        NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn review(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<GateView>, ApiError> {
    let d = app
        .review(
            &caller,
            &id,
            body.decision,
            body.comment,
            body.amended_payload,
        )
        .await?;
    Ok(Json(GateView::from(&d)))
}

/// List decisions, newest first.
///
/// Roles: reviewer, auditor, admin.
#[utoipa::path(get, path = "/api/decisions", tag = "gate", operation_id = "list_decisions",
    params(ListQuery),
    responses(
        (status = 200, description = "One page", body = DecisionList),
        (status = 400, description = "`bad_request`: a filter is malformed", body = ErrorBody),
        AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<DecisionList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let q = DecisionQuery {
        status: query.status,
        task_id: query.task_id,
        before: query.before,
        limit,
        ..Default::default()
    };
    let decisions = app.list(&caller, q).await?;
    let next_before = (decisions.len() == limit as usize)
        .then(|| decisions.last().map(|d| d.id.clone()))
        .flatten();
    let items = decisions.iter().map(GateView::from).collect();
    Ok(Json(DecisionList { items, next_before }))
}

/// Record what happened around a task.
///
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/agent/tasks/{task_id}/events", tag = "gate",
    params(("task_id" = String, Path, description = "Your task or run id")),
    request_body = EventBody,
    responses(
        (status = 201, description = "Recorded and logged", body = TaskEvent),
        NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn add_event(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(task_id): ApiPath<String>,
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

/// A task's events, in order.
///
/// Roles: any (agents: their own events).
#[utoipa::path(get, path = "/api/agent/tasks/{task_id}/events", tag = "gate",
    params(("task_id" = String, Path, description = "Your task or run id")),
    responses(
        (status = 200, description = "The events", body = EventList),
        (status = 422, description = "`validation_failed`: the task id is blank, over 200 characters, or holds a control character", body = ErrorBody),
        AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_events(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(task_id): ApiPath<String>,
) -> Result<Json<EventList>, ApiError> {
    let items = app.list_events(&caller, &task_id).await?;
    Ok(Json(EventList { items }))
}
