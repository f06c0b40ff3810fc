//! Execution receipts and outcomes. Both API shapes have them: these
//! handlers serve `/api/decision/{id}/…` and, as aliases with the same
//! description, `/api/gate/requests/{id}/…` (see `routes::ALIASES`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gatehouse_api::bodies::{ExecutionBody, OutcomeBody};
use gatehouse_api::error::{AuthErrors, BodyErrors, NotFound, ServerErrors};
use gatehouse_api::records::{ExecutionsView, OutcomeCreated, ReceiptCreated};
use gatehouse_api::ErrorBody;
use gatehouse_app::{App, AppError};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};

/// Report an executed action (Action Execution Receipt).
///
/// The executed action must be the approved one, on a decision that
/// permits it, and a named token must be the decision's; otherwise the
/// receipt is refused (409) and the decision flagged for owner review.
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/decision/{id}/executions", tag = "executions",
    params(("id" = String, Path, description = "Decision id")),
    request_body = ExecutionBody,
    responses(
        (status = 201, description = "Recorded and logged", body = ReceiptCreated),
        (status = 409, description = "`execution_refused`: not bound to what was approved (or after its token expired); `evidence_mismatch`: the row is not what the log says. Either way the decision is flagged", body = ErrorBody),
        NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn record_execution(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<ExecutionBody>,
) -> Result<(StatusCode, Json<ReceiptCreated>), ApiError> {
    let report = body
        .into_report()
        .map_err(|e| AppError::Validation(e.to_string()))?;
    let logged = app.record_execution(&caller, &id, report).await?;
    Ok((
        StatusCode::CREATED,
        Json(ReceiptCreated {
            execution_hash: logged.record.hash(),
            receipt: logged.record,
            log_index: logged.log_index,
        }),
    ))
}

/// Report what came of the action (Outcome Record).
///
/// Roles: agent, admin.
#[utoipa::path(post, path = "/api/decision/{id}/outcomes", tag = "executions",
    params(("id" = String, Path, description = "Decision id")),
    request_body = OutcomeBody,
    responses(
        (status = 201, description = "Recorded and logged", body = OutcomeCreated),
        NotFound, BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn record_outcome(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<(StatusCode, Json<OutcomeCreated>), ApiError> {
    let logged = app.record_outcome(&caller, &id, body.into()).await?;
    Ok((
        StatusCode::CREATED,
        Json(OutcomeCreated {
            outcome_hash: logged.record.hash(),
            outcome: logged.record,
            log_index: logged.log_index,
        }),
    ))
}

/// A decision's receipts and outcomes, in the order they were recorded.
///
/// Roles: any (agents: their own decisions).
#[utoipa::path(get, path = "/api/decision/{id}/executions", tag = "executions", operation_id = "list_executions",
    params(("id" = String, Path, description = "Decision id")),
    responses(
        (status = 200, description = "Receipts and outcomes", body = ExecutionsView),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<ExecutionsView>, ApiError> {
    let (executions, outcomes) = app.executions(&caller, &id).await?;
    Ok(Json(ExecutionsView::new(executions, outcomes)))
}
