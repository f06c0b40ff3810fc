//! Execution receipts and outcomes, on both API shapes.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use gatehouse_app::executions::{ExecutionReport, OutcomeReport, TokenRef};
use gatehouse_app::tokens::PresentedAction;
use gatehouse_app::App;
use gatehouse_core::execution::OutcomeStatus;
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiJson;

/// What an executor reports about an attempted mutation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionBody {
    pub target_system: String,
    pub target_object: String,
    pub mutation: String,
    pub executor: String,
    #[serde(default)]
    pub state_before_hash: Option<String>,
    #[serde(default)]
    pub state_after_hash: Option<String>,
    #[serde(default)]
    pub token_jti: Option<String>,
    /// The action actually executed, in the fields the request carried.
    #[serde(alias = "tool_name")]
    pub action: String,
    pub subject: String,
    #[serde(default)]
    pub payload: Map<String, Value>,
}

/// What came of the action.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    pub status: OutcomeStatus,
    pub action_taken: String,
    #[serde(default)]
    pub observed_metrics: Value,
    #[serde(default)]
    pub target_system: Option<String>,
}

pub async fn record_execution(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<ExecutionBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let report = ExecutionReport {
        target_system: body.target_system,
        target_object: body.target_object,
        mutation: body.mutation,
        executor: body.executor,
        state_before_hash: body.state_before_hash,
        state_after_hash: body.state_after_hash,
        token: body.token_jti.map(TokenRef::Jti),
        action: PresentedAction {
            action: body.action,
            subject: body.subject,
            payload: body.payload,
        },
    };
    let logged = app.record_execution(&caller, &id, report).await?;
    let hash = logged.record.hash();
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"receipt": logged.record, "execution_hash": hash, "log_index": logged.log_index}),
        ),
    ))
}

pub async fn record_outcome(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<OutcomeBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let report = OutcomeReport {
        status: body.status,
        action_taken: body.action_taken,
        observed_metrics: body.observed_metrics,
        target_system: body.target_system,
    };
    let logged = app.record_outcome(&caller, &id, report).await?;
    let hash = logged.record.hash();
    Ok((
        StatusCode::CREATED,
        Json(
            json!({"outcome": logged.record, "outcome_hash": hash, "log_index": logged.log_index}),
        ),
    ))
}

pub async fn list(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let (executions, outcomes) = app.executions(&caller, &id).await?;
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
