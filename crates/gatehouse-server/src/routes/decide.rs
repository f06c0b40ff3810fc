//! The Decide API: Decision Records, review, verification, exact replay
//! and Decision Packets.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use gatehouse_api::bodies::ReviewBody;
use gatehouse_api::error::{AuthErrors, BodyErrors, EvidenceMismatch, NotFound, ServerErrors};
use gatehouse_api::queries::{PoliciesParam, ReplayQuery};
use gatehouse_api::requests::DecideBody;
use gatehouse_api::views::{RecordView, ReplayView, VerifyView};
use gatehouse_api::ErrorBody;
use gatehouse_app::evidence::ReplayPolicies;
use gatehouse_app::{App, AppError};
use gatehouse_log::packet::Packet;

use super::idempotency_key;
use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Ask for a decision (Decide API): a Decision Record v1.
///
/// Verdicts: `yes` (allow), `no` (reject), `review` (pending_review).
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/decide", tag = "decide",
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry safely: the same key and body return the original decision")),
    request_body = DecideBody,
    responses(
        (status = 201, description = "Decided", body = RecordView),
        (status = 200, description = "The decision an earlier request with this Idempotency-Key made", body = RecordView),
        (status = 409, description = "`idempotency_conflict`: the key was used with another body; `evidence_mismatch`: the earlier decision's row is not what its log says", body = ErrorBody),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
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
    let mut view = RecordView::created(&decided.decision, checkpoint, decided.receipt_hash);
    view.approval_token = decided.approval_token;
    Ok((status, Json(view)))
}

/// Read a Decision Record with its current state.
///
/// Roles: any (agents: their own decisions).
#[utoipa::path(get, path = "/api/decision/{id}", tag = "decide",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The record", body = RecordView),
        EvidenceMismatch, NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_record(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RecordView>, ApiError> {
    let d = app.get(&caller, &id).await?;
    let mut view = RecordView::new(&d, app.checkpoint().await?);
    view.approval_token = app.approval_token(&caller, &d).await?;
    Ok(Json(view))
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
#[utoipa::path(post, path = "/api/decision/{id}/review", tag = "decide", operation_id = "review_decision",
    params(("id" = String, Path, description = "Decision id")),
    request_body = ReviewBody,
    responses(
        (status = 200, description = "Reviewed", body = RecordView),
        (status = 409, description = "`not_pending`: already resolved or expired; `already_reviewed`: this person already approved this action", body = ErrorBody),
        NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn review(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ReviewBody>,
) -> Result<Json<RecordView>, ApiError> {
    let d = app
        .review(
            &caller,
            &id,
            body.decision,
            body.comment,
            body.amended_payload,
        )
        .await?;
    Ok(Json(RecordView::new(&d, app.checkpoint().await?)))
}

/// Run the Decision Packet's checks on the server, with its own log key.
///
/// For a check you can trust, export the packet and verify it offline
/// with a log key you obtained yourself. Roles: any (agents: their own).
#[utoipa::path(get, path = "/api/decision/{id}/verify", tag = "evidence",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "Every check and whether all passed", body = VerifyView),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn verify(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<VerifyView>, ApiError> {
    let checks = app.verify(&caller, &id).await?;
    Ok(Json(VerifyView {
        valid: checks.iter().all(|c| c.ok),
        decision_id: id,
        checks,
    }))
}

/// Export the Decision Packet v1: everything about one decision, with
/// the exact log leaves and inclusion proofs to one signed checkpoint.
///
/// Roles: any (agents: their own decisions).
#[utoipa::path(get, path = "/api/decision/{id}/packet", tag = "evidence",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "The packet", body = Packet),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn packet(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Packet>, ApiError> {
    Ok(Json(app.packet(&caller, &id).await?))
}

/// Evaluate a stored decision again: under the exact policy version that
/// made it (default), or under the policies in force now.
///
/// Roles: any (agents: their own decisions).
#[utoipa::path(get, path = "/api/decision/{id}/replay", tag = "evidence",
    params(("id" = String, Path, description = "Decision id"), ReplayQuery),
    responses(
        (status = 200, description = "Both verdicts and whether they match", body = ReplayView),
        (status = 400, description = "`bad_request`: policies is neither recorded nor current", body = ErrorBody),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn replay(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<ReplayQuery>,
) -> Result<Json<ReplayView>, ApiError> {
    let policies = match query.policies.unwrap_or_default() {
        PoliciesParam::Recorded => ReplayPolicies::Recorded,
        PoliciesParam::Current => ReplayPolicies::Current,
    };
    Ok(Json(app.replay(&caller, &id, policies).await?.into()))
}
