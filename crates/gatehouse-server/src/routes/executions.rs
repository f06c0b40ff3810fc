//! Execution receipts and outcomes, on both API shapes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::service::{ExecutionInput, Gate, OutcomeInput};

pub async fn record_execution(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<ExecutionInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let (receipt, log_index) = gate.record_execution(&caller, &id, input).await?;
    let hash = receipt.hash();
    Ok((
        StatusCode::CREATED,
        Json(json!({"receipt": receipt, "execution_hash": hash, "log_index": log_index})),
    ))
}

pub async fn record_outcome(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
    ApiJson(input): ApiJson<OutcomeInput>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if input.action_taken.len() > 4000 {
        return Err(ApiError::Validation(
            "action_taken must be at most 4000 characters".into(),
        ));
    }
    let (outcome, log_index) = gate.record_outcome(&caller, &id, input).await?;
    let hash = outcome.hash();
    Ok((
        StatusCode::CREATED,
        Json(json!({"outcome": outcome, "outcome_hash": hash, "log_index": log_index})),
    ))
}

pub async fn list(
    State(gate): State<Arc<Gate>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (executions, outcomes) = gate.executions(&caller, &id).await?;
    let executions: Vec<Value> = executions
        .into_iter()
        .map(|r| json!({"execution_hash": r.hash(), "receipt": r}))
        .collect();
    let outcomes: Vec<Value> = outcomes
        .into_iter()
        .map(|o| json!({"outcome_hash": o.hash(), "outcome": o}))
        .collect();
    Ok(Json(
        json!({"executions": executions, "outcomes": outcomes}),
    ))
}
