//! Action Execution Receipts and Outcome Records: what the executor did,
//! checked against what was approved, and what came of it.

use gatehouse_core::execution::{self, ExecutionReceipt, OutcomeRecord, OutcomeStatus};
use gatehouse_core::ids;
use gatehouse_log::rules;
use gatehouse_store::Role;
use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::integrity::Freshness;
use crate::tokens::PresentedAction;
use crate::{now, App, Caller};

const MAX_ACTION_TAKEN: usize = 4000;

/// Which approval token an execution used: its id, or the token itself.
#[derive(Debug, Clone, PartialEq)]
pub enum TokenRef {
    Jti(String),
    Token(String),
}

/// What an executor reports about an attempted mutation.
#[derive(Debug, Clone)]
pub struct ExecutionReport {
    pub target_system: String,
    pub target_object: String,
    pub mutation: String,
    pub executor: String,
    pub state_before_hash: Option<String>,
    pub state_after_hash: Option<String>,
    pub token: Option<TokenRef>,
    /// The action actually executed.
    pub action: PresentedAction,
}

/// What came of the action.
#[derive(Debug, Clone)]
pub struct OutcomeReport {
    pub status: OutcomeStatus,
    pub action_taken: String,
    pub observed_metrics: Value,
    pub target_system: Option<String>,
}

/// A receipt or outcome as stored, with the log index of its entry.
pub struct Logged<T> {
    pub record: T,
    pub log_index: u64,
}

impl App {
    /// Records an Action Execution Receipt. The executed action must be the
    /// approved one, on a decision that permits it (and, when a token is
    /// named, the token issued for it); otherwise the receipt is refused and
    /// the decision is flagged for owner review.
    pub async fn record_execution(
        &self,
        caller: &Caller,
        id: &str,
        report: ExecutionReport,
    ) -> AppResult<Logged<ExecutionReceipt>> {
        caller.require(&[Role::Agent, Role::Admin], "report executions")?;
        let d = self.read(caller, id).await?;
        let executed = report.action.hash();
        let token_jti = match report.token {
            None => Ok(None),
            Some(TokenRef::Jti(jti)) => Ok(Some(jti)),
            Some(TokenRef::Token(token)) => self.token_id_of(&token, &d.id).await?.map(Some),
        };
        // The log's state, not the row's, decides: the same rule the packet
        // verifier and `log verify` apply to every logged receipt.
        let state = self.supported(&d, Freshness::Current).await?;
        let refusal = match &token_jti {
            Err(why) => Some(why.clone()),
            Ok(jti) => rules::receipt_refusal(
                &state,
                &executed,
                jti.as_deref(),
                Some(now().unix_timestamp()),
            ),
        };
        if let Some(reason) = refusal {
            self.store.flag_decision(&d.id, &reason, now()).await?;
            self.events.appended();
            return Err(AppError::ExecutionRefused(reason));
        }
        let at = now();
        let receipt = ExecutionReceipt {
            receipt_version: execution::RECEIPT_VERSION.into(),
            execution_id: ids::execution_id(),
            decision_id: d.id,
            target_system: report.target_system,
            target_object: report.target_object,
            mutation: report.mutation,
            executor: report.executor,
            state_before_hash: report.state_before_hash,
            state_after_hash: report.state_after_hash,
            token_jti: token_jti.ok().flatten(),
            action_hash: executed,
            reported_by: caller.key_id.clone(),
            executed_at: execution::timestamp(at),
        };
        let log_index = self.store.record_execution(&receipt, at).await?;
        self.events.appended();
        Ok(Logged {
            record: receipt,
            log_index,
        })
    }

    /// Records an Outcome Record: what came of the action.
    pub async fn record_outcome(
        &self,
        caller: &Caller,
        id: &str,
        report: OutcomeReport,
    ) -> AppResult<Logged<OutcomeRecord>> {
        caller.require(&[Role::Agent, Role::Admin], "report outcomes")?;
        if report.action_taken.chars().count() > MAX_ACTION_TAKEN {
            return Err(AppError::Validation(format!(
                "action_taken must be at most {MAX_ACTION_TAKEN} characters"
            )));
        }
        let d = self.read(caller, id).await?;
        let at = now();
        let outcome = OutcomeRecord {
            record_version: execution::OUTCOME_VERSION.into(),
            outcome_id: ids::outcome_id(),
            decision_id: d.id,
            status: report.status,
            action_taken: report.action_taken,
            observed_metrics: report.observed_metrics,
            target_system: report.target_system,
            reported_by: caller.key_id.clone(),
            reported_at: execution::timestamp(at),
        };
        let log_index = self.store.record_outcome(&outcome, at).await?;
        self.events.appended();
        Ok(Logged {
            record: outcome,
            log_index,
        })
    }

    /// A decision's receipts and outcomes, in the order they were recorded.
    pub async fn executions(
        &self,
        caller: &Caller,
        id: &str,
    ) -> AppResult<(Vec<ExecutionReceipt>, Vec<OutcomeRecord>)> {
        let d = self.read(caller, id).await?;
        Ok((
            self.store.list_executions(&d.id).await?,
            self.store.list_outcomes(&d.id).await?,
        ))
    }
}
