//! What the API does, independent of HTTP: decide, read, wait, review,
//! expire, replay. Handlers call these and only shape the results.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use gatehouse_core::canonical::canonical_sha256_hex;
use gatehouse_core::decision::truncate_to_millis;
use gatehouse_core::execution::{self, ExecutionReceipt, OutcomeRecord, OutcomeStatus};
use gatehouse_core::{
    ids, ActionRequest, Decision, Reason, Review, ReviewChoice, Status, TaskEvent, Verdict,
};
use gatehouse_log::packet::{
    AuditChain, ChainEntry, Check as PacketCheck, Packet, PolicyIntelligence, PolicyText,
    TokenSummary, PACKET_VERSION,
};
use gatehouse_log::tree::{Op, Output};
use gatehouse_policy::{Clock, Engine, EngineOptions};
use gatehouse_store::{ApiKey, CreateOutcome, DecisionQuery, Role, Store};
use gatehouse_store::{IssuedToken, NewDecision, Redemption};
use gatehouse_token::{Claims, Expectation, TokenSigner};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use jsonwebtoken::jwk::JwkSet;
use serde::Serialize;
use serde_json::{Map, Value};
use time::OffsetDateTime;
use tokio::sync::broadcast;

use crate::auth::{self, Caller, KeyCache, NewKey};
use crate::config::ServerConfig;
use crate::error::ApiError;
use crate::policies::PolicyRegistry;

pub struct Gate {
    store: Arc<dyn Store>,
    /// The approval-token key in force; replaced while serving by
    /// [`Gate::replace_token_key`].
    tokens: ArcSwap<TokenSigner>,
    policies: PolicyRegistry,
    config: ServerConfig,
    keys: KeyCache,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Ids of decisions that just left `pending_review`, to wake waiters.
    resolved: broadcast::Sender<String>,
}

fn now() -> OffsetDateTime {
    truncate_to_millis(OffsetDateTime::now_utc())
}

/// A decision just made (or replayed for a repeated idempotency key).
pub struct Decided {
    pub decision: Decision,
    /// The signed checkpoint committed with it, when the store has it at hand.
    pub checkpoint: Option<String>,
    /// The approval token, when the decision permits the action.
    pub approval_token: Option<String>,
    /// The decision's leaf hash (see [`crate::views::receipt_hash`]),
    /// computed once for the token and the response.
    pub receipt_hash: String,
    pub replayed: bool,
}

/// Replay of a stored decision.
#[derive(Debug, Serialize)]
pub struct ReplayReport {
    pub decision_id: String,
    pub matches: bool,
    pub policy_version: String,
    pub replayed_policy_version: String,
    pub original: Outcome,
    pub replayed: Outcome,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct Outcome {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
}

/// What an executor reports about an attempted mutation.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExecutionInput {
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
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutcomeInput {
    pub status: OutcomeStatus,
    pub action_taken: String,
    #[serde(default)]
    pub observed_metrics: Value,
    #[serde(default)]
    pub target_system: Option<String>,
}

impl Gate {
    /// Builds the service and records the policy version in force.
    pub async fn new(
        store: Arc<dyn Store>,
        engine: Engine,
        options: EngineOptions,
        config: ServerConfig,
        tokens: Arc<TokenSigner>,
    ) -> Result<Arc<Self>, ApiError> {
        let limiter = NonZeroU32::new(config.rate_limit_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.rate_limit_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let policies = PolicyRegistry::new(engine, options);
        policies.persist_current(store.as_ref(), now()).await?;
        let (resolved, _) = broadcast::channel(1024);
        Ok(Arc::new(Gate {
            store,
            tokens: ArcSwap::new(tokens),
            policies,
            config,
            keys: KeyCache::default(),
            limiter,
            resolved,
        }))
    }

    pub fn config(&self) -> &ServerConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    pub fn engine(&self) -> &Arc<Engine> {
        self.policies.current()
    }

    pub async fn authenticate(&self, presented: &str) -> Result<Caller, ApiError> {
        let (id, secret) = auth::parse_key(presented).ok_or(ApiError::Unauthorized)?;
        let key = match self.keys.get(id, self.config.key_cache_ttl) {
            Some(k) => k,
            None => {
                let k = self
                    .store
                    .get_key(id)
                    .await?
                    .ok_or(ApiError::Unauthorized)?;
                self.keys.put(k.clone());
                k
            }
        };
        if !auth::verify(&key, secret) {
            return Err(ApiError::Unauthorized);
        }
        Ok(Caller {
            key_id: key.id,
            name: key.name,
            role: key.role,
        })
    }

    pub fn check_rate(&self, key_id: &str) -> Result<(), ApiError> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key_id.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            ApiError::RateLimited(wait.as_secs().max(1))
        })
    }

    /// Evaluates and durably stores a decision. Returns the decision, the
    /// signed checkpoint committed with it when the store has it at hand,
    /// and whether it is an earlier one returned for a repeated idempotency key.
    pub async fn decide(
        &self,
        caller: &Caller,
        request: ActionRequest,
        idempotency_key: Option<String>,
    ) -> Result<Decided, ApiError> {
        caller.require(&[Role::Agent, Role::Admin], "create decision requests")?;
        if let Some(key) = &idempotency_key {
            if key.is_empty() || key.len() > 200 {
                return Err(ApiError::Validation(
                    "idempotency key must be 1 to 200 characters".into(),
                ));
            }
        }
        let created_at = now();
        let clock = Clock::from_datetime(created_at.to_offset(self.config.utc_offset));
        let engine = self.policies.current();
        let eval = engine
            .evaluate(&request, clock)
            .map_err(|e| ApiError::SchemaMismatch(e.0))?;
        // Only an idempotent retry is ever compared with its original, so the
        // (canonical, hence costly) request hash is computed only then.
        let request_hash = match &idempotency_key {
            Some(_) => {
                canonical_sha256_hex(&request).map_err(|e| ApiError::Internal(e.to_string()))?
            }
            None => String::new(),
        };
        let deadline = (eval.verdict == Verdict::PendingReview).then(|| {
            let timeout = eval
                .review_timeout
                .unwrap_or(self.config.default_review_timeout);
            created_at + timeout
        });
        let id = ids::decision_id();
        let request_id = ids::request_id();
        let action_hash = request.action_hash();
        let decision = Decision {
            record_hash: String::new(),
            id,
            request_id,
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
        let receipt_hash = new.receipt_hash();
        // An allowed decision's token is stored in the same transaction, for
        // the agent (or admin) that asked, who receives it in the response.
        if new.decision.status.permits_action() {
            let token = self.new_token(&new.decision, receipt_hash.clone())?;
            new = new.with_token(token);
        }
        let new = Arc::new(new);
        let outcome = self.store.insert_decision(Arc::clone(&new)).await?;
        let NewDecision {
            decision, token, ..
        } = Arc::try_unwrap(new).unwrap_or_else(|shared| (*shared).clone());
        let token = token.map(|(t, _)| t);
        match outcome {
            CreateOutcome::Created {
                log_index,
                checkpoint,
            } => Ok(Decided {
                decision: Decision {
                    log_index: Some(log_index),
                    ..decision
                },
                checkpoint,
                approval_token: token.map(|t| t.token),
                receipt_hash,
                replayed: false,
            }),
            CreateOutcome::Existing(original) if original.request_hash == decision.request_hash => {
                let approval_token = self.approval_token(caller, &original).await?;
                Ok(Decided {
                    receipt_hash: crate::views::receipt_hash(&original),
                    decision: *original,
                    checkpoint: None,
                    approval_token,
                    replayed: true,
                })
            }
            CreateOutcome::Existing(_) => Err(ApiError::IdempotencyConflict),
        }
    }

    /// Reads a decision the caller may see. A pending decision past its
    /// deadline is expired on the spot, so no reader ever sees it pending.
    pub async fn get(&self, caller: &Caller, id: &str) -> Result<Decision, ApiError> {
        let d = self
            .store
            .get_decision(id)
            .await?
            .ok_or(ApiError::NotFound("decision"))?;
        if !caller.may_read(&d.created_by) {
            // Indistinguishable from a missing id, so ids cannot be probed.
            return Err(ApiError::NotFound("decision"));
        }
        if d.status == Status::PendingReview && d.deadline.is_some_and(|dl| dl <= now()) {
            self.sweep().await;
            return self
                .store
                .get_decision(id)
                .await?
                .ok_or(ApiError::NotFound("decision"));
        }
        Ok(d)
    }

    /// Long-poll: returns as soon as the decision leaves `pending_review`,
    /// or after `wait` at most. Wakes on local reviews at once and checks
    /// the database every second for reviews made on other replicas.
    pub async fn wait(
        &self,
        caller: &Caller,
        id: &str,
        wait: Duration,
    ) -> Result<Decision, ApiError> {
        let deadline = tokio::time::Instant::now() + wait;
        let mut resolved = self.resolved.subscribe();
        loop {
            let d = self.get(caller, id).await?;
            let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
            if d.status.is_final() || remaining.is_zero() {
                return Ok(d);
            }
            let poll = remaining.min(Duration::from_secs(1));
            let _ = tokio::time::timeout(poll, async {
                loop {
                    match resolved.recv().await {
                        Ok(done) if done == id => return,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => continue,
                        Err(broadcast::error::RecvError::Closed) => return,
                    }
                }
            })
            .await;
        }
    }

    pub async fn review(
        &self,
        caller: &Caller,
        id: &str,
        choice: ReviewChoice,
        comment: Option<String>,
    ) -> Result<Decision, ApiError> {
        caller.require(&[Role::Reviewer], "review decisions")?;
        if comment.as_ref().is_some_and(|c| c.len() > 4000) {
            return Err(ApiError::Validation(
                "comment must be at most 4000 characters".into(),
            ));
        }
        let d = self
            .store
            .get_decision(id)
            .await?
            .ok_or(ApiError::NotFound("decision"))?;
        if d.created_by == caller.key_id {
            return Err(ApiError::SelfReview);
        }
        let review = Review {
            decision: choice,
            reviewer_key_id: caller.key_id.clone(),
            reviewer_name: Some(caller.name.clone()),
            comment,
            reviewed_at: now(),
        };
        let updated = match self.store.review_decision(id, &review).await {
            Err(gatehouse_store::StoreError::NotPending(s)) if s == "expired" => {
                self.sweep().await;
                return Err(ApiError::NotPending(
                    "decision is expired, not pending_review".into(),
                ));
            }
            other => other?,
        };
        let _ = self.resolved.send(updated.id.clone());
        Ok(updated)
    }

    /// Expires overdue pending decisions. Errors are logged and retried on
    /// the next tick: expiry only ever moves decisions towards "no".
    pub async fn sweep(&self) {
        match self.store.expire_due(now()).await {
            Ok(ids) => {
                for id in ids {
                    tracing::info!(decision_id = %id, "pending decision expired");
                    let _ = self.resolved.send(id);
                }
            }
            Err(e) => tracing::warn!(error = %e, "expiry sweep failed"),
        }
        if let Some(limiter) = &self.limiter {
            limiter.retain_recent();
        }
    }

    pub async fn list(
        &self,
        caller: &Caller,
        query: DecisionQuery,
    ) -> Result<Vec<Decision>, ApiError> {
        caller.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "list decisions",
        )?;
        Ok(self.store.list_decisions(&query).await?)
    }

    pub async fn add_event(
        &self,
        caller: &Caller,
        mut event: TaskEvent,
    ) -> Result<TaskEvent, ApiError> {
        caller.require(&[Role::Agent, Role::Admin], "record task events")?;
        if let Some(decision_id) = &event.decision_id {
            let d = self.get(caller, decision_id).await?;
            if d.request.task_id.as_deref() != Some(event.task_id.as_str()) {
                return Err(ApiError::Validation(format!(
                    "decision {decision_id} belongs to another task"
                )));
            }
        }
        event.id = ids::event_id();
        event.created_by = caller.key_id.clone();
        event.created_at = now();
        self.store.add_event(&event).await?;
        Ok(event)
    }

    pub async fn list_events(
        &self,
        caller: &Caller,
        task_id: &str,
    ) -> Result<Vec<TaskEvent>, ApiError> {
        let events = self.store.list_events(task_id).await?;
        Ok(events
            .into_iter()
            .filter(|e| caller.may_read(&e.created_by))
            .collect())
    }

    /// Re-evaluates a stored decision: under its own policy version (the
    /// exact replay), or under the policies in force now.
    pub async fn replay(
        &self,
        caller: &Caller,
        id: &str,
        current: bool,
    ) -> Result<ReplayReport, ApiError> {
        let d = self.get(caller, id).await?;
        let replayed = if current {
            let engine = self.policies.current().clone();
            let clock = Clock::from_datetime(d.created_at.to_offset(self.config.utc_offset));
            (
                engine.evaluate(&d.request, clock),
                engine.version().to_string(),
            )
        } else {
            let engine = self
                .policies
                .version(self.store.as_ref(), &d.policy_version)
                .await?;
            (
                engine.evaluate_context(
                    &d.evaluated_action,
                    &d.request.agent,
                    &d.request.subject,
                    d.context.clone(),
                ),
                engine.version().to_string(),
            )
        };
        let (result, version) = replayed;
        let replayed = match result {
            Ok(eval) => Outcome {
                verdict: eval.verdict,
                reasons: eval.reasons,
            },
            // The stored input no longer fits the schema: that is a "no".
            Err(e) => Outcome {
                verdict: Verdict::Reject,
                reasons: vec![Reason {
                    code: "SCHEMA_MISMATCH".into(),
                    policy_id: None,
                    message: e.0,
                }],
            },
        };
        let original = Outcome {
            verdict: d.verdict,
            reasons: d.reasons.clone(),
        };
        Ok(ReplayReport {
            decision_id: d.id,
            matches: original == replayed,
            policy_version: d.policy_version,
            replayed_policy_version: version,
            original,
            replayed,
        })
    }

    /// Decision Packet v1 for one decision.
    pub async fn packet(&self, caller: &Caller, id: &str) -> Result<Packet, ApiError> {
        use base64::Engine as _;
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let d = self.get(caller, id).await?;
        let note =
            self.store.latest_checkpoint().await?.ok_or_else(|| {
                ApiError::Internal("no checkpoint although a decision exists".into())
            })?;
        let cp = gatehouse_log::checkpoint::verify(&note, self.store.log_verifier_key())
            .map_err(|e| ApiError::Internal(format!("own checkpoint: {e}")))?;
        let mut chain = Vec::new();
        for (index, leaf) in self.store.log_entries_for(&d.id).await? {
            if index >= cp.size {
                continue; // logged after the checkpoint was read
            }
            let Output::Proof(proof) = self
                .tree(Op::Inclusion {
                    index,
                    size: cp.size,
                })
                .await?
            else {
                return Err(ApiError::Internal("inclusion proof missing".into()));
            };
            chain.push(ChainEntry {
                index,
                leaf: b64(&leaf),
                proof: proof.iter().map(|h| b64(&h.0)).collect(),
            });
        }
        let engine = self
            .policies
            .version(self.store.as_ref(), &d.policy_version)
            .await?;
        let mut policies: Vec<PolicyText> = d
            .reasons
            .iter()
            .filter_map(|r| r.policy_id.as_deref())
            .filter_map(|pid| {
                engine.policy_text(pid).map(|t| PolicyText {
                    id: pid.into(),
                    text: t.into(),
                })
            })
            .collect();
        policies.dedup_by(|a, b| a.id == b.id);
        let token = match self.store.get_token(&d.id).await? {
            Some(t) => Some(TokenSummary {
                kid: t.kid,
                claims: jsonwebtoken::dangerous::insecure_decode::<Value>(&t.token)
                    .map_err(|e| ApiError::Internal(format!("stored token: {e}")))?
                    .claims,
            }),
            None => None,
        };
        let packet = Packet {
            packet_version: PACKET_VERSION.into(),
            decision_id: d.id.clone(),
            record: d.record(),
            record_hash: d.record_hash.clone(),
            status: d.status.as_str().into(),
            reviews: d
                .review
                .iter()
                .filter_map(|r| serde_json::to_value(r).ok())
                .collect(),
            token,
            executions: self.store.list_executions(&d.id).await?,
            outcomes: self.store.list_outcomes(&d.id).await?,
            policy: PolicyIntelligence {
                policy_version: d.policy_version.clone(),
                policies,
            },
            audit_chain: AuditChain {
                checkpoint: note,
                entries: chain,
            },
            verification_hints: serde_json::json!({
                "record_hash": "SHA-256 of the RFC 8785 canonical JSON of record",
                "leaf_hash": "SHA-256(0x00 || leaf bytes), RFC 6962",
                "node_hash": "SHA-256(0x01 || left || right), RFC 6962",
                "checkpoint": "C2SP tlog-checkpoint in a C2SP signed note, Ed25519",
                "log_key_url": "/api/log/key",
                "jwks_url": "/.well-known/jwks.json",
                "token_kid": self.tokens.load().kid(),
                "note": "hints only: verify with a log key obtained out of band",
            }),
            packet_hash: String::new(),
        };
        Ok(packet.seal())
    }

    /// The packet checks, run on the server with its own log key.
    pub async fn verify(&self, caller: &Caller, id: &str) -> Result<Vec<PacketCheck>, ApiError> {
        let packet = self.packet(caller, id).await?;
        Ok(gatehouse_log::packet::verify(
            &packet,
            self.store.log_verifier_key(),
        ))
    }

    pub async fn create_key(
        &self,
        caller: &Caller,
        role: Role,
        name: &str,
    ) -> Result<NewKey, ApiError> {
        caller.require(&[Role::Admin], "manage API keys")?;
        let new = auth::generate_key(role, name, now());
        self.store.create_key(&new.key).await?;
        Ok(new)
    }

    pub async fn list_keys(&self, caller: &Caller) -> Result<Vec<ApiKey>, ApiError> {
        caller.require(&[Role::Admin], "manage API keys")?;
        Ok(self.store.list_keys().await?)
    }

    pub async fn revoke_key(&self, caller: &Caller, id: &str) -> Result<(), ApiError> {
        caller.require(&[Role::Admin], "manage API keys")?;
        if !self.store.revoke_key(id, now()).await? {
            return Err(ApiError::NotFound("API key"));
        }
        self.keys.forget(id);
        Ok(())
    }

    /// The newest signed checkpoint. Every stored decision is covered by it,
    /// because each commit that appends to the log also writes one.
    pub async fn checkpoint(&self) -> Result<Option<String>, ApiError> {
        Ok(self.store.latest_checkpoint().await?)
    }

    /// Runs a tree operation against the stored hashes.
    pub async fn tree(&self, op: Op) -> Result<Output, ApiError> {
        let needs = op
            .needs()
            .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        let hashes = self.store.read_log_hashes(needs).await?;
        op.run(&hashes)
            .map_err(|e| ApiError::Internal(e.to_string()))
    }

    /// The public keys approval tokens are verified with: the current key,
    /// and every retired key while a token it signed is still unexpired.
    pub async fn jwks(&self) -> Result<JwkSet, ApiError> {
        let mut keys = vec![self.tokens.load().jwk().clone()];
        for text in self.store.retired_token_keys_in_use(now()).await? {
            let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_str(&text)
                .map_err(|e| ApiError::Internal(format!("stored token key: {e}")))?;
            // A key put back in force after it was retired is listed once.
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk);
            }
        }
        Ok(JwkSet { keys })
    }

    /// Signs approval tokens with `new` from now on. The key it replaces is
    /// recorded as retired first (a `key_event` in the log, unless `gatehouse
    /// keys rotate` recorded it already), so the JWKS keeps publishing it
    /// while tokens it signed are unexpired; if that fails, the old key stays
    /// in force. Returns whether the key changed.
    pub async fn replace_token_key(&self, new: Arc<TokenSigner>) -> Result<bool, ApiError> {
        let old = self.tokens.load_full();
        if old.kid() == new.kid() {
            return Ok(false);
        }
        let jwk =
            serde_json::to_string(old.jwk()).map_err(|e| ApiError::Internal(e.to_string()))?;
        self.store.retire_token_key(old.kid(), &jwk, now()).await?;
        self.tokens.store(new.clone());
        tracing::info!(
            old = old.kid(),
            new = new.kid(),
            "approval tokens are now signed with a new key"
        );
        Ok(true)
    }

    /// The decision's approval token, issued the first time it is asked for
    /// and the same token afterwards. Only for decisions that permit the
    /// action, and only for the callers who act on them (the agent that
    /// asked, or an admin): reviewers and auditors never hold one.
    pub async fn approval_token(
        &self,
        caller: &Caller,
        d: &Decision,
    ) -> Result<Option<String>, ApiError> {
        let acts =
            matches!(caller.role, Role::Agent | Role::Admin) && caller.may_read(&d.created_by);
        if !d.status.permits_action() || !acts {
            return Ok(None);
        }
        if let Some(existing) = self.store.get_token(&d.id).await? {
            return Ok(Some(existing.token));
        }
        let token = self.new_token(d, crate::views::receipt_hash(d))?;
        let stored = self.store.issue_token(&token).await?;
        Ok(Some(stored.token))
    }

    /// A new signed approval token for `d`, whose leaf hash is `receipt_hash`.
    fn new_token(&self, d: &Decision, receipt_hash: String) -> Result<IssuedToken, ApiError> {
        let issued_at = now();
        let ttl = d
            .token_ttl_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.token_ttl);
        let expires_at = issued_at + ttl;
        let claims = Claims {
            sub: d.id.clone(),
            act: d.action_hash.clone(),
            dec: receipt_hash,
            aud: self.config.token_audience.clone(),
            jti: ids::token_id(),
            iat: issued_at.unix_timestamp(),
            nbf: issued_at.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        // One load, so the kid recorded is the key that signed.
        let signer = self.tokens.load();
        let token = signer
            .issue(&claims)
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        Ok(IssuedToken {
            decision_id: d.id.clone(),
            jti: claims.jti,
            kid: signer.kid().to_string(),
            token,
            expires_at,
            created_at: issued_at,
        })
    }

    /// Redeems an approval token for the action about to run: signature,
    /// time window, audience, action binding, the decision's state, and
    /// single use. Returns the log index of the redemption.
    pub async fn redeem(
        &self,
        caller: &Caller,
        token: &str,
        action: &str,
        subject: &str,
        payload: &Map<String, Value>,
    ) -> Result<(Claims, u64), ApiError> {
        caller.require(&[Role::Agent, Role::Admin], "redeem approval tokens")?;
        let presented = gatehouse_core::action_hash(action, subject, payload);
        let claims = gatehouse_token::verify(
            token,
            &self.jwks().await?,
            &Expectation {
                action_hash: &presented,
                audience: &self.config.token_audience,
                now: now().unix_timestamp(),
            },
        )
        .map_err(|e| ApiError::TokenRejected(e.to_string()))?;
        let reject = |why: String| ApiError::TokenRejected(why);
        let d = self
            .store
            .get_decision(&claims.sub)
            .await?
            .ok_or_else(|| reject(format!("decision {} does not exist", claims.sub)))?;
        if !d.status.permits_action() {
            return Err(reject(format!(
                "decision {} is {}",
                d.id,
                d.status.as_str()
            )));
        }
        let issued = self.store.get_token(&d.id).await?;
        if issued.map(|t| t.jti) != Some(claims.jti.clone()) {
            return Err(reject(
                "this is not the token issued for the decision".into(),
            ));
        }
        let index = self
            .store
            .redeem_token(&Redemption {
                jti: claims.jti.clone(),
                decision_id: d.id,
                redeemed_by: caller.key_id.clone(),
                at: now(),
            })
            .await?;
        Ok((claims, index))
    }

    /// Records an Action Execution Receipt. The executed action must be the
    /// approved one, on a decision that permits it (and, when a token id is
    /// given, the token issued for it); otherwise the receipt is refused and
    /// the decision is flagged for owner review (seed page 004).
    pub async fn record_execution(
        &self,
        caller: &Caller,
        id: &str,
        input: ExecutionInput,
    ) -> Result<(ExecutionReceipt, u64), ApiError> {
        caller.require(&[Role::Agent, Role::Admin], "report executions")?;
        let d = self.get(caller, id).await?;
        let executed = gatehouse_core::action_hash(&input.action, &input.subject, &input.payload);
        let refusal = if !d.status.permits_action() {
            Some(format!(
                "the decision is {}, so no action was authorised",
                d.status.as_str()
            ))
        } else if executed != d.action_hash {
            Some(format!(
                "the executed action ({executed}) is not the approved one ({})",
                d.action_hash
            ))
        } else if let Some(jti) = &input.token_jti {
            let issued = self.store.get_token(&d.id).await?.map(|t| t.jti);
            (issued.as_deref() != Some(jti.as_str()))
                .then(|| format!("token {jti} was not issued for this decision"))
        } else {
            None
        };
        if let Some(reason) = refusal {
            self.store.flag_decision(&d.id, &reason, now()).await?;
            return Err(ApiError::ExecutionRefused(reason));
        }
        let at = now();
        let receipt = ExecutionReceipt {
            receipt_version: execution::RECEIPT_VERSION.into(),
            execution_id: ids::execution_id(),
            decision_id: d.id,
            target_system: input.target_system,
            target_object: input.target_object,
            mutation: input.mutation,
            executor: input.executor,
            state_before_hash: input.state_before_hash,
            state_after_hash: input.state_after_hash,
            token_jti: input.token_jti,
            action_hash: executed,
            reported_by: caller.key_id.clone(),
            executed_at: execution::timestamp(at),
        };
        let index = self.store.record_execution(&receipt, at).await?;
        Ok((receipt, index))
    }

    /// Records an Outcome Record: what came of the action.
    pub async fn record_outcome(
        &self,
        caller: &Caller,
        id: &str,
        input: OutcomeInput,
    ) -> Result<(OutcomeRecord, u64), ApiError> {
        caller.require(&[Role::Agent, Role::Admin], "report outcomes")?;
        let d = self.get(caller, id).await?;
        let at = now();
        let outcome = OutcomeRecord {
            record_version: execution::OUTCOME_VERSION.into(),
            outcome_id: ids::outcome_id(),
            decision_id: d.id,
            status: input.status,
            action_taken: input.action_taken,
            observed_metrics: input.observed_metrics,
            target_system: input.target_system,
            reported_by: caller.key_id.clone(),
            reported_at: execution::timestamp(at),
        };
        let index = self.store.record_outcome(&outcome, at).await?;
        Ok((outcome, index))
    }

    pub async fn executions(
        &self,
        caller: &Caller,
        id: &str,
    ) -> Result<(Vec<ExecutionReceipt>, Vec<OutcomeRecord>), ApiError> {
        let d = self.get(caller, id).await?;
        Ok((
            self.store.list_executions(&d.id).await?,
            self.store.list_outcomes(&d.id).await?,
        ))
    }

    pub async fn ready(&self) -> Result<(), ApiError> {
        self.store.ping().await.map_err(|e| {
            tracing::warn!(error = %e, "readiness check failed");
            ApiError::Unavailable
        })?;
        Ok(())
    }
}
