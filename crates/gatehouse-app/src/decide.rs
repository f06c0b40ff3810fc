//! Decide: evaluate an action request under the policies in force and
//! store the decision durably before anyone hears of it.

use std::sync::Arc;

use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_core::{ids, ActionRequest, Decision, Verdict};
use gatehouse_policy::Clock;
use gatehouse_store::{CreateOutcome, NewDecision, Role};

use crate::error::{AppError, AppResult};
use crate::telemetry;
use crate::tokens::receipt_hash;
use crate::{now, App, Caller};

/// The longest idempotency key accepted.
const MAX_IDEMPOTENCY_KEY: usize = 200;

/// A decision just made (or replayed for a repeated idempotency key).
pub struct Decided {
    pub decision: Decision,
    /// The signed checkpoint committed with it, when the store has it at hand.
    pub checkpoint: Option<String>,
    /// The approval token, when the decision permits the action.
    pub approval_token: Option<String>,
    /// The decision's leaf hash (see [`receipt_hash`]), computed once for
    /// the token and the response.
    pub receipt_hash: String,
    /// True when this is an earlier decision returned for a repeated
    /// idempotency key.
    pub replayed: bool,
}

impl App {
    /// Evaluates and durably stores a decision.
    pub async fn decide(
        &self,
        caller: &Caller,
        request: ActionRequest,
        idempotency_key: Option<String>,
    ) -> AppResult<Decided> {
        caller.require(&[Role::Agent, Role::Admin], "create decision requests")?;
        if let Some(key) = &idempotency_key {
            if key.is_empty() || key.chars().count() > MAX_IDEMPOTENCY_KEY {
                return Err(AppError::Validation(format!(
                    "idempotency key must be 1 to {MAX_IDEMPOTENCY_KEY} characters"
                )));
            }
        }
        let created_at = now();
        let clock = Clock::from_datetime(created_at.to_offset(self.config.utc_offset));
        let engine = self.policies.current();
        let eval = engine
            .evaluate(&request, clock)
            .map_err(|e| AppError::SchemaMismatch(e.0))?;
        // Only an idempotent retry is ever compared with its original, so the
        // (canonical, hence costly) request hash is computed only then.
        let request_hash = match &idempotency_key {
            Some(_) => canonical_sha256_hex(&request).map_err(AppError::internal)?,
            None => String::new(),
        };
        let deadline = (eval.verdict == Verdict::PendingReview).then(|| {
            let timeout = eval
                .review_timeout
                .unwrap_or(self.config.default_review_timeout);
            created_at + timeout
        });
        let action_hash = request.action_hash();
        let decision = Decision {
            record_hash: String::new(),
            id: ids::decision_id(),
            request_id: ids::request_id(),
            created_by: caller.key_id.clone(),
            request,
            verdict: eval.verdict,
            status: eval.verdict.initial_status(),
            reasons: eval.reasons,
            policy_version: engine.version().to_string(),
            evaluated_action: eval.evaluated_action,
            context: eval.context,
            created_at,
            deadline,
            review: None,
            resolved_at: None,
            idempotency_key,
            request_hash,
            action_hash,
            token_ttl_secs: eval.token_ttl.map(|d| d.as_secs()),
            flag: None,
            log_index: None,
        }
        .seal();
        let mut new = NewDecision::new(decision);
        let receipt = new.receipt_hash();
        // An allowed decision's token is stored in the same transaction, for
        // the agent (or admin) that asked, who receives it in the response.
        if new.decision.status.permits_action() {
            let token = self.new_token(&new.decision, receipt.clone())?;
            new = new.with_token(token);
        }
        let new = Arc::new(new);
        let outcome = self.store.insert_decision(Arc::clone(&new)).await?;
        let NewDecision {
            decision, token, ..
        } = Arc::try_unwrap(new).unwrap_or_else(|shared| (*shared).clone());
        match outcome {
            CreateOutcome::Created {
                log_index,
                checkpoint,
            } => {
                self.events.appended();
                telemetry::decided(decision.verdict, &decision.evaluated_action);
                Ok(Decided {
                    decision: Decision {
                        log_index: Some(log_index),
                        ..decision
                    },
                    checkpoint,
                    approval_token: token.map(|(t, _)| self.signed(&t)).transpose()?,
                    receipt_hash: receipt,
                    replayed: false,
                })
            }
            CreateOutcome::Existing(original) if original.request_hash == decision.request_hash => {
                let approval_token = self.approval_token(caller, &original).await?;
                Ok(Decided {
                    receipt_hash: receipt_hash(&original),
                    decision: *original,
                    checkpoint: None,
                    approval_token,
                    replayed: true,
                })
            }
            CreateOutcome::Existing(_) => Err(AppError::IdempotencyConflict),
        }
    }
}
