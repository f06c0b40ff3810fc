//! Decide: evaluate an action request under the policies in force and
//! store the decision durably before anyone hears of it.

use std::sync::Arc;

use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_core::decision::rfc3339;
use gatehouse_core::review_rule::{Requirement, ReviewRule};
use gatehouse_core::{ids, ActionRequest, Decision, Verdict};
use gatehouse_policy::{valid_group, Clock, ReviewRoute};
use gatehouse_store::{CreateOutcome, NewDecision, Role};
use time::OffsetDateTime;

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

/// The most actions one [`App::always_rejected`] call may name.
pub const MAX_SCREENED_ACTIONS: usize = 500;

impl App {
    /// Which of `actions` the policies in force reject for `agent` whatever
    /// the subject and payload (see `Engine::always_rejects`), with the
    /// policy version that says so. Nothing is stored: it is a read of the
    /// policies, for tools that hide what can never run.
    pub fn always_rejected(
        &self,
        caller: &Caller,
        agent: String,
        actions: Vec<String>,
    ) -> AppResult<(String, Vec<String>)> {
        caller.require(&[Role::Agent, Role::Admin], "screen actions against policy")?;
        if actions.len() > MAX_SCREENED_ACTIONS {
            return Err(AppError::Validation(format!(
                "actions: at most {MAX_SCREENED_ACTIONS} may be screened at once"
            )));
        }
        let invalid = |e: gatehouse_core::ValidationError| AppError::Validation(e.to_string());
        let agent = gatehouse_core::error::name("agent", agent).map_err(invalid)?;
        let engine = self.policies.current();
        let mut rejected = Vec::new();
        for action in actions {
            let action = gatehouse_core::error::name("actions", action).map_err(invalid)?;
            if engine.always_rejects(&agent, &action) {
                rejected.push(action);
            }
        }
        Ok((engine.version().to_string(), rejected))
    }

    /// Who must approve a decision the policies sent to review: one
    /// requirement per matching review policy. A policy without
    /// `@reviewers` is routed to the request's owner group when one exists
    /// (never wider than a policy's own groups), otherwise to anyone.
    async fn review_rule(
        &self,
        caller: &Caller,
        request: &ActionRequest,
        routes: &[ReviewRoute],
        created_at: OffsetDateTime,
    ) -> AppResult<ReviewRule> {
        let owner_group = match &request.owner {
            Some(owner)
                if valid_group(owner)
                    && (routes.is_empty() || routes.iter().any(|r| r.groups.is_empty())) =>
            {
                self.group_exists(owner).await?.then(|| owner.clone())
            }
            _ => None,
        };
        let anyone = ReviewRoute {
            policy_id: String::new(),
            groups: Vec::new(),
            quorum: 1,
            escalate_after: None,
            escalate_to: None,
        };
        let routes = if routes.is_empty() {
            std::slice::from_ref(&anyone)
        } else {
            routes
        };
        let mut requirements: Vec<Requirement> = routes
            .iter()
            .map(|r| Requirement {
                groups: if r.groups.is_empty() {
                    owner_group.iter().cloned().collect()
                } else {
                    r.groups.clone()
                },
                quorum: r.quorum,
                escalate_to: r.escalate_to.clone(),
                escalate_at: r.escalate_after.map(|after| rfc3339(created_at + after)),
                policy_id: (!r.policy_id.is_empty()).then(|| r.policy_id.clone()),
            })
            .collect();
        // "Any one reviewer" is implied by every other requirement.
        if requirements.len() > 1 {
            let trivial =
                |r: &Requirement| r.groups.is_empty() && r.quorum == 1 && r.escalate_to.is_none();
            if !requirements.iter().all(trivial) {
                requirements.retain(|r| !trivial(r));
            } else {
                requirements.truncate(1);
            }
        }
        Ok(ReviewRule {
            requester: caller.identity().to_string(),
            requirements,
        })
    }

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
        if let Some(url) = &request.callback_url {
            self.config
                .callbacks
                .check_url(url)
                .map_err(AppError::CallbackNotAllowed)?;
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
        let review_rule = match eval.verdict {
            Verdict::PendingReview => Some(
                self.review_rule(caller, &request, &eval.routes, created_at)
                    .await?,
            ),
            _ => None,
        };
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
            reviews: Vec::new(),
            review_rule,
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
