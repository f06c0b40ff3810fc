//! A compiled policy set (see `compile.rs`) and evaluating requests
//! against it.

use std::collections::HashMap;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid, PolicySet,
    Request, Response, Schema,
};
use gatehouse_core::{ActionRequest, Reason, Verdict};
use serde_json::{Map, Value};

use crate::annotations::{PolicyMeta, ReviewRoute};
use crate::context::{build_context, restricted};
use crate::schema_shape::ActionShape;
use crate::{Clock, InputError, PolicyFile};

/// The action that stands in for every action the schema does not declare.
pub const DEFAULT_ACTION: &str = "default";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnknownActionMode {
    /// Send actions the schema does not know to a reviewer (the default).
    #[default]
    Review,
    /// Reject them outright.
    Reject,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct EngineOptions {
    pub unknown_action: UnknownActionMode,
}

/// The policies that can apply to one action, split by tier, and the
/// entity types its requests use. Built once at load time so evaluation cost
/// does not grow with unrelated policies and no name is parsed per request.
pub(crate) struct Slice {
    pub(crate) decide: PolicySet,
    pub(crate) review: PolicySet,
    pub(crate) action: EntityUid,
    pub(crate) principal_type: EntityTypeName,
    pub(crate) resource_type: EntityTypeName,
}

/// The outcome of evaluating one request.
#[derive(Debug, Clone, PartialEq)]
pub struct Evaluation {
    pub verdict: Verdict,
    pub reasons: Vec<Reason>,
    pub evaluated_action: String,
    pub context: Value,
    /// The shortest `@review_timeout` among the review policies that matched.
    pub review_timeout: Option<Duration>,
    /// The shortest `@token_ttl` among the policies that determined the
    /// verdict: how long an approval token for this decision may live.
    pub token_ttl: Option<Duration>,
    /// For `pending_review`: who reviews, one route per matching review
    /// policy, by policy id; empty otherwise.
    pub routes: Vec<ReviewRoute>,
}

pub struct Engine {
    pub(crate) version: String,
    pub(crate) files: Vec<PolicyFile>,
    pub(crate) schema: Schema,
    pub(crate) shapes: HashMap<String, ActionShape>,
    pub(crate) slices: HashMap<String, Slice>,
    pub(crate) meta: HashMap<String, PolicyMeta>,
    pub(crate) entities: Entities,
    pub(crate) authorizer: Authorizer,
    pub(crate) options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("policies", &self.meta.len())
            .finish()
    }
}

impl Engine {
    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    pub fn policy_count(&self) -> usize {
        self.meta.len()
    }

    /// Every policy's id and text, as reports quote them.
    pub fn policy_texts(&self) -> impl Iterator<Item = (&str, &str)> {
        self.meta
            .iter()
            .map(|(id, m)| (id.as_str(), m.text.as_str()))
    }

    /// Text of one policy, for reports that explain a verdict.
    pub fn policy_text(&self, id: &str) -> Option<&str> {
        self.meta.get(id).map(|m| m.text.as_str())
    }

    /// Evaluates a request at the given calendar instant.
    pub fn evaluate(
        &self,
        request: &ActionRequest,
        clock: Clock,
    ) -> Result<Evaluation, InputError> {
        let evaluated = if self.shapes.contains_key(&request.action) {
            request.action.as_str()
        } else if self.shapes.contains_key(DEFAULT_ACTION) {
            DEFAULT_ACTION
        } else {
            return Ok(self.unknown_action(&request.action));
        };
        let context = build_context(request, clock, &self.shapes[evaluated]);
        self.evaluate_context(evaluated, &request.agent, &request.subject, context)
    }

    /// Evaluates an already-built context, as stored in a decision: this is
    /// how replay reproduces a verdict exactly.
    pub fn evaluate_context(
        &self,
        action: &str,
        principal: &str,
        resource: &str,
        context: Value,
    ) -> Result<Evaluation, InputError> {
        let Some(slice) = self.slices.get(action) else {
            return Ok(self.unknown_action(action));
        };
        let fail_closed = |message: String| Evaluation {
            verdict: Verdict::Reject,
            reasons: vec![Reason {
                code: "POLICY_EVALUATION_ERROR".into(),
                policy_id: None,
                message,
            }],
            evaluated_action: action.to_string(),
            context: context.clone(),
            review_timeout: None,
            token_ttl: None,
            routes: Vec::new(),
        };
        let mismatch = |detail: String| {
            InputError(format!(
                "the request does not fit the policy schema for action {action:?}: {detail}"
            ))
        };
        let Value::Object(fields) = &context else {
            return Err(mismatch("the context must be an object".into()));
        };
        // Built directly rather than through Cedar's JSON parser, which
        // probes every object for entity and extension escapes: that cost
        // more than the evaluation itself.
        let pairs = fields
            .iter()
            .map(|(k, v)| restricted(k, v).map(|e| (k.clone(), e)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(mismatch)?;
        let cedar_context = match Context::from_pairs(pairs) {
            Ok(c) => c,
            Err(e) => return Ok(fail_closed(e.to_string())),
        };
        let principal = EntityUid::from_type_name_and_id(
            slice.principal_type.clone(),
            EntityId::new(principal),
        );
        let resource =
            EntityUid::from_type_name_and_id(slice.resource_type.clone(), EntityId::new(resource));
        // With the schema, Cedar type-checks the context against the action's
        // declared context: a missing attribute or a wrong type is the
        // caller's error.
        let request = Request::new(
            principal,
            slice.action.clone(),
            resource,
            cedar_context,
            Some(&self.schema),
        )
        .map_err(|e| mismatch(e.to_string()))?;

        let decide = self
            .authorizer
            .is_authorized(&request, &slice.decide, &self.entities);
        if let Some(message) = first_error(&decide) {
            return Ok(fail_closed(message));
        }
        if decide.decision() == Decision::Deny {
            let mut reasons = self.reasons(&decide);
            if reasons.is_empty() {
                reasons.push(Reason {
                    code: "NO_PERMIT".into(),
                    policy_id: None,
                    message: "no policy permits this action".into(),
                });
            }
            return Ok(Evaluation {
                verdict: Verdict::Reject,
                reasons,
                evaluated_action: action.to_string(),
                context,
                review_timeout: None,
                token_ttl: None,
                routes: Vec::new(),
            });
        }
        let review = self
            .authorizer
            .is_authorized(&request, &slice.review, &self.entities);
        if let Some(message) = first_error(&review) {
            return Ok(fail_closed(message));
        }
        if review.decision() == Decision::Deny {
            let review_timeout = review
                .diagnostics()
                .reason()
                .filter_map(|id| {
                    self.meta
                        .get(AsRef::<str>::as_ref(id))
                        .and_then(|m| m.review_timeout)
                })
                .min();
            let mut routes: Vec<ReviewRoute> = review
                .diagnostics()
                .reason()
                .filter_map(|id| {
                    self.meta
                        .get(AsRef::<str>::as_ref(id))
                        .and_then(|m| m.route.clone())
                })
                .collect();
            // Cedar reports policies in hash order; records must not vary.
            routes.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
            return Ok(Evaluation {
                verdict: Verdict::PendingReview,
                reasons: self.reasons(&review),
                evaluated_action: action.to_string(),
                context,
                review_timeout,
                token_ttl: self.shortest(&review, |m| m.token_ttl),
                routes,
            });
        }
        Ok(Evaluation {
            verdict: Verdict::Allow,
            reasons: self.reasons(&decide),
            evaluated_action: action.to_string(),
            context,
            review_timeout: None,
            token_ttl: self.shortest(&decide, |m| m.token_ttl),
            routes: Vec::new(),
        })
    }

    /// The shortest duration an annotation gives among the policies that
    /// determined `response`.
    fn shortest(
        &self,
        response: &Response,
        pick: impl Fn(&PolicyMeta) -> Option<Duration>,
    ) -> Option<Duration> {
        response
            .diagnostics()
            .reason()
            .filter_map(|id| self.meta.get(AsRef::<str>::as_ref(id)).and_then(&pick))
            .min()
    }

    fn reasons(&self, response: &Response) -> Vec<Reason> {
        let mut reasons: Vec<Reason> = response
            .diagnostics()
            .reason()
            .filter_map(|id| {
                self.meta.get(AsRef::<str>::as_ref(id)).map(|m| Reason {
                    code: m.code.clone(),
                    policy_id: Some(id.to_string()),
                    message: m.reason.clone(),
                })
            })
            .collect();
        // Cedar reports determining policies in hash order; sort so records
        // (and their hashes) are reproducible.
        reasons.sort_by(|a, b| a.policy_id.cmp(&b.policy_id));
        reasons
    }

    fn unknown_action(&self, action: &str) -> Evaluation {
        let (verdict, code) = match self.options.unknown_action {
            UnknownActionMode::Review => (Verdict::PendingReview, "UNKNOWN_ACTION_REVIEW"),
            UnknownActionMode::Reject => (Verdict::Reject, "UNKNOWN_ACTION_REJECTED"),
        };
        Evaluation {
            verdict,
            reasons: vec![Reason {
                code: code.into(),
                policy_id: None,
                message: format!(
                    "the policy schema declares no action {action:?} and no \"default\" action"
                ),
            }],
            evaluated_action: action.to_string(),
            context: Value::Object(Map::new()),
            review_timeout: None,
            token_ttl: None,
            routes: Vec::new(),
        }
    }
}

fn first_error(response: &Response) -> Option<String> {
    response
        .diagnostics()
        .errors()
        .next()
        .map(|e| format!("policy evaluation failed, so the request is rejected: {e}"))
}
