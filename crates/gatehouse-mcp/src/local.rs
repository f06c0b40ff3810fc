//! Tool calls answered in process, by `App`, as the authenticated caller.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_api::bodies::{ExecutionBody, OutcomeBody, RedeemBody};
use gatehouse_api::records::{OutcomeCreated, ReceiptCreated, Redeemed};
use gatehouse_api::requests::SdkGateBody;
use gatehouse_api::views::{DecisionList, GateView};
use gatehouse_app::{App, AppError, Caller};
use gatehouse_core::{Role, Status};
use gatehouse_store::DecisionQuery;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::gate::{Call, Gate, ToolError};

pub struct LocalGate {
    pub app: Arc<App>,
    pub caller: Caller,
}

fn parse<T: DeserializeOwned>(args: Map<String, Value>) -> Result<T, ToolError> {
    serde_json::from_value(Value::Object(args)).map_err(ToolError::arguments)
}

fn json<T: Serialize>(value: &T) -> Result<Value, ToolError> {
    serde_json::to_value(value).map_err(|e| AppError::Internal(e.to_string()).into())
}

impl LocalGate {
    async fn view(&self, d: &gatehouse_core::Decision) -> Result<Value, ToolError> {
        let mut view = GateView::from(d);
        view.approval_token = self.app.approval_token(&self.caller, d).await?;
        json(&view)
    }
}

#[async_trait]
impl Gate for LocalGate {
    async fn role(&self) -> Result<Role, ToolError> {
        Ok(self.caller.role)
    }

    async fn call(&self, call: Call) -> Result<Value, ToolError> {
        let (app, caller) = (&self.app, &self.caller);
        match call {
            Call::RequestApproval(args) => {
                let mut body: SdkGateBody = parse(args)?;
                let key = body.idempotency_key.take();
                let request = body
                    .into_request()
                    .map_err(|e| AppError::Validation(e.to_string()))?;
                let decided = app.decide(caller, request, key).await?;
                let mut view = GateView::with_receipt(&decided.decision, decided.receipt_hash);
                view.approval_token = decided.approval_token;
                json(&view)
            }
            Call::GetDecision { id } => {
                let d = app.get(caller, &id).await?;
                self.view(&d).await
            }
            Call::WaitForDecision { id, seconds } => {
                let d = app.wait(caller, &id, Duration::from_secs(seconds)).await?;
                self.view(&d).await
            }
            Call::RedeemToken(args) => {
                let body: RedeemBody = parse(args)?;
                let action = body.action.into();
                let r = app.redeem(caller, &body.token, &action).await?;
                json(&Redeemed {
                    redeemed: true,
                    decision_id: r.claims.sub,
                    jti: r.claims.jti,
                    action_hash: r.claims.act,
                    log_index: r.log_index,
                })
            }
            Call::ReportExecution { id, receipt } => {
                let body: ExecutionBody = parse(receipt)?;
                let report = body
                    .into_report()
                    .map_err(|e| AppError::Validation(e.to_string()))?;
                let logged = app.record_execution(caller, &id, report).await?;
                json(&ReceiptCreated {
                    execution_hash: logged.record.hash(),
                    receipt: logged.record,
                    log_index: logged.log_index,
                })
            }
            Call::ReportOutcome { id, outcome } => {
                let body: OutcomeBody = parse(outcome)?;
                let logged = app.record_outcome(caller, &id, body.into()).await?;
                json(&OutcomeCreated {
                    outcome_hash: logged.record.hash(),
                    outcome: logged.record,
                    log_index: logged.log_index,
                })
            }
            Call::ListPending { limit, before } => {
                let query = DecisionQuery {
                    status: Some(Status::PendingReview),
                    before,
                    limit,
                    ..Default::default()
                };
                let decisions = app.list(caller, query).await?;
                let next_before = (decisions.len() == limit as usize)
                    .then(|| decisions.last().map(|d| d.id.clone()))
                    .flatten();
                let items = decisions.iter().map(GateView::from).collect();
                json(&DecisionList { items, next_before })
            }
            Call::Review { id, body } => {
                let body: gatehouse_api::bodies::ReviewBody = parse(body)?;
                let d = app
                    .review(
                        caller,
                        &id,
                        body.decision,
                        body.comment,
                        body.amended_payload,
                    )
                    .await?;
                json(&GateView::from(&d))
            }
        }
    }
}
