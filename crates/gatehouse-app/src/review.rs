//! Reading decisions, waiting for them, reviewing pending ones, and
//! expiring those that outlive their deadline.

use std::time::Duration;

use gatehouse_core::{Decision, Review, ReviewChoice, Status, Verdict};
use gatehouse_policy::Clock;
use gatehouse_store::{DecisionQuery, Role, StoreError};
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};
use crate::events::Resolution;
use crate::integrity::Freshness;
use crate::telemetry;
use crate::{now, App, Caller};

/// The longest review comment accepted.
const MAX_COMMENT: usize = 4000;

impl App {
    /// Reads a decision the caller may see, for acting on it or showing
    /// whether it may proceed: a decision that permits the action is
    /// checked against its log entries first ([`App::read`] is the rest).
    pub async fn get(&self, caller: &Caller, id: &str) -> AppResult<Decision> {
        let d = self.read(caller, id).await?;
        // Nobody is told an action may proceed on a row the log does not support.
        if d.status.permits_action() {
            self.supported(&d, Freshness::Settled).await?;
        }
        Ok(d)
    }

    /// Reads a decision the caller may see, as stored, for the evidence
    /// about it (packets, replay, receipts), which is checked against the
    /// log by whoever verifies it. A pending decision past its deadline is
    /// expired on the spot, so no reader ever sees it pending.
    pub async fn read(&self, caller: &Caller, id: &str) -> AppResult<Decision> {
        let d = self
            .store
            .get_decision(id)
            .await?
            .ok_or(AppError::NotFound("decision"))?;
        if !caller.may_read(&d.created_by) {
            // Indistinguishable from a missing id, so ids cannot be probed.
            return Err(AppError::NotFound("decision"));
        }
        let d = if d.status == Status::PendingReview && d.deadline.is_some_and(|dl| dl <= now()) {
            self.sweep().await;
            self.store
                .get_decision(id)
                .await?
                .ok_or(AppError::NotFound("decision"))?
        } else {
            d
        };
        Ok(d)
    }

    /// Long-poll: returns as soon as the decision leaves `pending_review`,
    /// after `wait` at most, or at once when the process is stopping. Wakes
    /// on the decision's domain events, which cover every replica.
    /// When [`AppConfig::max_waiters`](crate::AppConfig) waits are open
    /// already, answers the current state at once: the caller polls again.
    pub async fn wait(&self, caller: &Caller, id: &str, wait: Duration) -> AppResult<Decision> {
        let Ok(_waiting) = self.waiters.try_acquire() else {
            metrics::counter!("gatehouse_waits_not_held_total").increment(1);
            return self.get(caller, id).await;
        };
        let deadline = tokio::time::Instant::now() + wait.min(self.config.max_wait);
        // Subscribe before reading, so nothing that happens in between is missed.
        let mut events = self.events.watch(id).await?;
        loop {
            // The decision is dropped before waiting: thousands of open
            // waits would otherwise each hold a copy of it.
            let wake_at = {
                let d = self.get(caller, id).await?;
                if d.status.is_final() || tokio::time::Instant::now() >= deadline {
                    return Ok(d);
                }
                // Wake at the review deadline too, where reading expires it.
                let expires_in = d
                    .deadline
                    .map(|dl| Duration::try_from(dl - now()).unwrap_or(Duration::ZERO));
                match expires_in {
                    Some(left) => deadline.min(tokio::time::Instant::now() + left),
                    None => deadline,
                }
            };
            tokio::select! {
                event = events.next() => {
                    if event.is_none() {
                        // Fell behind or the stream ended: start over from the store.
                        events = self.events.watch(id).await?;
                    }
                }
                _ = tokio::time::sleep_until(wake_at) => {}
                _ = self.stopping() => return self.get(caller, id).await,
            }
        }
    }

    /// Records a review. Under a review rule the reviewer must be eligible
    /// and must not have approved the same action already; the decision is
    /// resolved once every requirement is met (or at the first reject).
    /// An approval may carry `amended`: the payload approved instead, which
    /// the decision's policies evaluate first (a reject refuses the review).
    pub async fn review(
        &self,
        caller: &Caller,
        id: &str,
        choice: ReviewChoice,
        comment: Option<String>,
        amended: Option<Map<String, Value>>,
    ) -> AppResult<Decision> {
        caller.require(&[Role::Reviewer], "review decisions")?;
        if comment
            .as_ref()
            .is_some_and(|c| c.chars().count() > MAX_COMMENT)
        {
            return Err(AppError::Validation(format!(
                "comment must be at most {MAX_COMMENT} characters"
            )));
        }
        if amended.is_some() && choice != ReviewChoice::Approve {
            return Err(AppError::Validation(
                "amended_payload goes with decision \"approve\" only".into(),
            ));
        }
        let d = self
            .store
            .get_decision(id)
            .await?
            .ok_or(AppError::NotFound("decision"))?;
        // Separation of duties: not the key that asked, nor any key acting
        // for the same principal (a key minted by it, or the key that
        // minted it). The rule adds the person.
        if d.created_by == caller.key_id
            || self.principal(&d.created_by).await? == self.principal(&caller.key_id).await?
        {
            return Err(AppError::SelfReview);
        }
        let review_time = now();
        let mut review = Review {
            decision: choice,
            reviewer_key_id: caller.key_id.clone(),
            reviewer_name: Some(caller.name.clone()),
            comment,
            reviewed_at: review_time,
            reviewer_user: caller.user.clone(),
            groups: caller.groups.clone(),
            action_hash: None,
            amended_payload: None,
        };
        if let Some(rule) = &d.review_rule {
            if d.status == Status::PendingReview {
                // The store judges again atomically; this answers early
                // and before an amendment is evaluated.
                let prior: Vec<_> = d.reviews.iter().map(|r| r.vote(&d.action_hash)).collect();
                review.action_hash = Some(d.tally().current_action_hash);
                rule.check(&d.created_by, &prior, &review.vote(&d.action_hash))?;
            }
            if let Some(payload) = amended {
                review.action_hash = Some(self.amendment(&d, &payload).await?);
                review.amended_payload = Some(payload);
            } else if review.action_hash.is_none() {
                review.action_hash = Some(d.tally().current_action_hash);
            }
        } else if amended.is_some() {
            return Err(AppError::Validation(
                "this decision was recorded before amendments; approve or reject it as proposed"
                    .into(),
            ));
        }
        let updated = match self.store.review_decision(id, &review).await {
            Err(StoreError::NotPending(s)) if s == "expired" => {
                self.sweep().await;
                return Err(AppError::NotPending(
                    "decision is expired, not pending_review".into(),
                ));
            }
            other => other?,
        };
        self.events.appended();
        if updated.status.is_final() {
            let resolution = match updated.status {
                Status::Approved => Resolution::Approved,
                _ => Resolution::Rejected,
            };
            let waited = (review_time - updated.created_at)
                .try_into()
                .unwrap_or_default();
            telemetry::resolved(resolution, waited);
        }
        Ok(updated)
    }

    /// Checks an amended payload the way the original was checked: the
    /// decision's recorded policy version evaluates the changed action
    /// (typed by the schema: a mismatch is a 400); a reject refuses the
    /// amendment with its reasons. Returns the amended action's hash.
    async fn amendment(&self, d: &Decision, payload: &Map<String, Value>) -> AppResult<String> {
        let mut request = d.request.clone();
        request.payload = payload.clone();
        let engine = self
            .policies
            .version(self.store.as_ref(), &d.policy_version)
            .await?;
        let clock = Clock::from_datetime(now().to_offset(self.config.utc_offset));
        let eval = engine
            .evaluate(&request, clock)
            .map_err(|e| AppError::SchemaMismatch(format!("amended_payload: {}", e.0)))?;
        if eval.verdict == Verdict::Reject {
            return Err(AppError::AmendmentRejected(eval.reasons));
        }
        let hash = request.action_hash();
        if hash == d.tally().current_action_hash {
            return Err(AppError::Validation(
                "amended_payload is the action already proposed; approve it without changes".into(),
            ));
        }
        Ok(hash)
    }

    /// Expires overdue pending decisions. Errors are logged and retried on
    /// the next tick: expiry only ever moves decisions towards "no".
    pub async fn sweep(&self) {
        // Escalations first: a decision escalated and expired in the same
        // tick shows both, in that order.
        match self.store.escalate_due(now()).await {
            Ok(escalated) => {
                for (id, group) in &escalated {
                    tracing::info!(decision_id = %id, %group, "pending decision escalated");
                }
                if !escalated.is_empty() {
                    self.events.appended();
                }
            }
            Err(e) => {
                if let Some(repeats) = self.sweep_failures.admit(&e.to_string()) {
                    tracing::warn!(error = %e, repeats, "escalation sweep failed");
                }
            }
        }
        match self.store.expire_due(now()).await {
            Ok(ids) => {
                for id in &ids {
                    tracing::info!(decision_id = %id, "pending decision expired");
                }
                if !ids.is_empty() {
                    self.events.appended();
                    telemetry::expired(ids.len());
                }
            }
            Err(e) => {
                if let Some(repeats) = self.sweep_failures.admit(&e.to_string()) {
                    tracing::warn!(error = %e, repeats, "expiry sweep failed");
                }
            }
        }
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
        // Expired console sessions go about once a minute.
        if self
            .sweeps
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(60)
        {
            self.purge_sessions().await;
            if let Some(limiter) = &self.sign_ins {
                limiter.retain_recent();
            }
        }
    }

    pub async fn list(&self, caller: &Caller, query: DecisionQuery) -> AppResult<Vec<Decision>> {
        caller.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "list decisions",
        )?;
        Ok(self.store.list_decisions(&query).await?)
    }
}
