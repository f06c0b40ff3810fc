//! Compiling a policy set and evaluating requests against it.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use cedar_policy::{
    ActionConstraint, Authorizer, Context, Decision, Entities, EntityId, EntityTypeName, EntityUid,
    Policy, PolicyId, PolicySet, Request, Response, RestrictedExpression, Schema, SchemaFragment,
    ValidationMode, Validator,
};
use gatehouse_core::{canonical, ActionRequest, Reason, Verdict};
use miette::Diagnostic;
use serde_json::{Map, Value};

use crate::annotations::{self as ann, code_from_id, parse_duration};
use crate::schema_shape::{action_shapes, ActionShape};
use crate::{Clock, InputError, PolicyError, PolicyFile};

/// The action that stands in for every action the schema does not declare.
pub const DEFAULT_ACTION: &str = "default";
const REVIEW_BASELINE_ID: &str = "gatehouse::review-baseline";

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

#[derive(Debug, Clone)]
struct PolicyMeta {
    file: String,
    review_tier: bool,
    reason: String,
    code: String,
    review_timeout: Option<Duration>,
    token_ttl: Option<Duration>,
    text: String,
}

/// The policies that can apply to one action, split by tier, and the
/// entity types its requests use. Built once at load time so evaluation cost
/// does not grow with unrelated policies and no name is parsed per request.
struct Slice {
    decide: PolicySet,
    review: PolicySet,
    action: EntityUid,
    principal_type: EntityTypeName,
    resource_type: EntityTypeName,
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
}

pub struct Engine {
    version: String,
    files: Vec<PolicyFile>,
    schema: Schema,
    shapes: HashMap<String, ActionShape>,
    slices: HashMap<String, Slice>,
    meta: HashMap<String, PolicyMeta>,
    entities: Entities,
    authorizer: Authorizer,
    options: EngineOptions,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("version", &self.version)
            .field("policies", &self.meta.len())
            .finish()
    }
}

/// 1-based line and column of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    // Offsets come from Cedar's diagnostics; never panic on a bad one.
    let before = text.get(..offset.min(text.len())).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let col = before.len() - before.rfind('\n').map(|i| i + 1).unwrap_or(0) + 1;
    (line, col)
}

/// Renders a Cedar diagnostic as `file:line:col: message`.
fn located(file: &str, text: &str, diag: &dyn Diagnostic) -> String {
    let offset = diag
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|l| l.offset());
    let mut message = diag.to_string();
    if let Some(help) = diag.help() {
        message = format!("{message} ({help})");
    }
    match offset {
        Some(o) => {
            let (line, col) = line_col(text, o);
            format!("{file}:{line}:{col}: {message}")
        }
        None => format!("{file}: {message}"),
    }
}

/// Version of a policy set: SHA-256 over the canonical JSON of its files.
pub fn policy_version(files: &[PolicyFile]) -> String {
    let digest = canonical::canonical_sha256_hex(&files).unwrap_or_default();
    format!("pv_{}", &digest[..32])
}

impl Engine {
    pub fn compile(files: Vec<PolicyFile>, options: EngineOptions) -> Result<Self, PolicyError> {
        let schemas: Vec<&PolicyFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedarschema"))
            .collect();
        if schemas.len() != 1 {
            return Err(PolicyError::SchemaCount(schemas.len()));
        }
        let schema_file = schemas[0];
        let mut problems = Vec::new();
        let (fragment, _) =
            SchemaFragment::from_cedarschema_str(&schema_file.text).map_err(|e| {
                PolicyError::Invalid(vec![located(&schema_file.name, &schema_file.text, &e)])
            })?;
        let schema_json = fragment
            .to_json_value()
            .map_err(|e| PolicyError::Invalid(vec![format!("{}: {e}", schema_file.name)]))?;
        let (schema, _) = Schema::from_cedarschema_str(&schema_file.text).map_err(|e| {
            PolicyError::Invalid(vec![located(&schema_file.name, &schema_file.text, &e)])
        })?;
        let (namespace, shapes) = action_shapes(&schema_json);

        let mut all = PolicySet::new();
        let mut meta = HashMap::new();
        let policy_files: Vec<&PolicyFile> = files
            .iter()
            .filter(|f| f.name.ends_with(".cedar"))
            .collect();
        if policy_files.is_empty() {
            return Err(PolicyError::NoPolicies(schema_file.name.clone()));
        }
        for file in &policy_files {
            let parsed = match PolicySet::from_str(&file.text) {
                Ok(p) => p,
                Err(errors) => {
                    problems.extend(errors.iter().map(|e| located(&file.name, &file.text, e)));
                    continue;
                }
            };
            if parsed.templates().next().is_some() {
                problems.push(format!("{}: policy templates are not supported", file.name));
            }
            for (n, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation(ann::ID)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}#{n}", file.name));
                let tier = policy.annotation(ann::TIER);
                let review_tier = match tier {
                    None | Some("decide") => false,
                    Some("review") => true,
                    Some(other) => {
                        problems.push(format!(
                            "{}: policy {id}: unknown @tier({other:?}); use \"review\" or leave it out",
                            file.name
                        ));
                        false
                    }
                };
                if review_tier && policy.effect() == cedar_policy::Effect::Permit {
                    problems.push(format!(
                        "{}: policy {id}: a permit in the review tier has no effect; only forbids send requests to review",
                        file.name
                    ));
                }
                let review_timeout = match policy.annotation(ann::REVIEW_TIMEOUT) {
                    None => None,
                    Some(raw) => match parse_duration(raw) {
                        Some(d) => Some(d),
                        None => {
                            problems.push(format!(
                                "{}: policy {id}: @review_timeout({raw:?}) is not a duration like 30m, 2h or 7d",
                                file.name
                            ));
                            None
                        }
                    },
                };
                let token_ttl = match policy.annotation(ann::TOKEN_TTL) {
                    None => None,
                    Some(raw) => match parse_duration(raw) {
                        Some(d) => Some(d),
                        None => {
                            problems.push(format!(
                                "{}: policy {id}: @token_ttl({raw:?}) is not a duration like 5m or 1h",
                                file.name
                            ));
                            None
                        }
                    },
                };
                let reason = policy
                    .annotation(ann::REASON)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("policy {id} matched"));
                let code = policy
                    .annotation(ann::CODE)
                    .map(str::to_string)
                    .unwrap_or_else(|| code_from_id(&id));
                if meta.contains_key(&id) {
                    problems.push(format!("{}: policy id {id:?} is used twice", file.name));
                    continue;
                }
                let renamed = policy.new_id(PolicyId::new(&id));
                if let Err(e) = all.add(renamed) {
                    problems.push(format!("{}: policy {id}: {e}", file.name));
                    continue;
                }
                meta.insert(
                    id,
                    PolicyMeta {
                        file: file.name.clone(),
                        review_tier,
                        reason,
                        code,
                        review_timeout,
                        token_ttl,
                        text: policy.to_string(),
                    },
                );
            }
        }
        if problems.is_empty() {
            let result = Validator::new(schema.clone()).validate(&all, ValidationMode::Strict);
            for err in result.validation_errors() {
                let id = err.policy_id().to_string();
                let file = meta.get(&id).map(|m| m.file.clone()).unwrap_or_default();
                let text = policy_files
                    .iter()
                    .find(|f| f.name == file)
                    .map(|f| f.text.as_str())
                    .unwrap_or("");
                problems.push(located(&file, text, err));
            }
        }
        if !problems.is_empty() {
            return Err(PolicyError::Invalid(problems));
        }

        let entities = schema
            .action_entities()
            .map_err(|e| PolicyError::Invalid(vec![format!("{}: {e}", schema_file.name)]))?;
        let action_type = if namespace.is_empty() {
            "Action".to_string()
        } else {
            format!("{namespace}::Action")
        };
        let group_ids: Vec<EntityUid> = schema.action_groups().cloned().collect();
        let mut slices = HashMap::new();
        for name in shapes.keys() {
            let uid = action_uid(&action_type, name)?;
            let applies = |p: &Policy| match p.action_constraint() {
                ActionConstraint::Any => true,
                ActionConstraint::Eq(a) => a == uid,
                // Membership through action groups is resolved by Cedar at
                // evaluation; here a policy naming any group is kept.
                ActionConstraint::In(list) => {
                    list.iter().any(|a| *a == uid || group_ids.contains(a))
                }
            };
            let mut decide = PolicySet::new();
            let mut review = PolicySet::new();
            for p in all.policies().filter(|p| applies(p)) {
                let target = if meta[&p.id().to_string()].review_tier {
                    &mut review
                } else {
                    &mut decide
                };
                target
                    .add(p.clone())
                    .map_err(|e| PolicyError::Invalid(vec![e.to_string()]))?;
            }
            // With a baseline permit, the review set can only deny through a
            // matching forbid, which is exactly "send to review".
            let baseline = Policy::parse(
                Some(PolicyId::new(REVIEW_BASELINE_ID)),
                "permit(principal, action, resource);",
            )
            .map_err(|e| PolicyError::Invalid(vec![e.to_string()]))?;
            review
                .add(baseline)
                .map_err(|e| PolicyError::Invalid(vec![e.to_string()]))?;
            let type_name = |t: &str| {
                EntityTypeName::from_str(t).map_err(|e| {
                    PolicyError::Invalid(vec![format!(
                        "{}: action {name:?} needs a principal and a resource type: {e}",
                        schema_file.name
                    )])
                })
            };
            let shape = &shapes[name];
            slices.insert(
                name.clone(),
                Slice {
                    decide,
                    review,
                    action: uid,
                    principal_type: type_name(&shape.principal_type)?,
                    resource_type: type_name(&shape.resource_type)?,
                },
            );
        }

        Ok(Engine {
            version: policy_version(&files),
            files,
            schema,
            shapes,
            slices,
            meta,
            entities,
            authorizer: Authorizer::new(),
            options,
        })
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn files(&self) -> &[PolicyFile] {
        &self.files
    }

    pub fn policy_count(&self) -> usize {
        self.meta.len()
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
            return Ok(Evaluation {
                verdict: Verdict::PendingReview,
                reasons: self.reasons(&review),
                evaluated_action: action.to_string(),
                context,
                review_timeout,
                token_ttl: self.shortest(&review, |m| m.token_ttl),
            });
        }
        Ok(Evaluation {
            verdict: Verdict::Allow,
            reasons: self.reasons(&decide),
            evaluated_action: action.to_string(),
            context,
            review_timeout: None,
            token_ttl: self.shortest(&decide, |m| m.token_ttl),
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

fn action_uid(action_type: &str, name: &str) -> Result<EntityUid, PolicyError> {
    let ty = EntityTypeName::from_str(action_type)
        .map_err(|e| PolicyError::Invalid(vec![e.to_string()]))?;
    Ok(EntityUid::from_type_name_and_id(ty, EntityId::new(name)))
}

/// JSON → Cedar value. Cedar has no floating point and no null, so those
/// are refused here with the path of the offending field.
fn restricted(path: &str, value: &Value) -> Result<RestrictedExpression, String> {
    Ok(match value {
        Value::String(s) => RestrictedExpression::new_string(s.clone()),
        Value::Bool(b) => RestrictedExpression::new_bool(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => RestrictedExpression::new_long(i),
            None if n.is_u64() => {
                return Err(format!("{path} is {n}, outside the 64-bit integer range policies take"))
            }
            None => {
                return Err(format!(
                    "{path} is {n}, but policies only take whole numbers (put money in minor units, e.g. cents)"
                ))
            }
        },
        Value::Array(items) => RestrictedExpression::new_set(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| restricted(&format!("{path}[{i}]"), v))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Value::Object(map) => RestrictedExpression::new_record(
            map.iter()
                .map(|(k, v)| restricted(&format!("{path}.{k}"), v).map(|e| (k.clone(), e)))
                .collect::<Result<Vec<_>, _>>()?,
        )
        .map_err(|e| format!("{path}: {e}"))?,
        Value::Null => return Err(format!("{path} is null, which policies cannot take")),
    })
}

/// The context Cedar sees: every fact Gatehouse knows about the request,
/// narrowed to the attributes the action's schema declares.
fn build_context(request: &ActionRequest, clock: Clock, shape: &ActionShape) -> Value {
    let payload: Map<String, Value> = match &shape.payload_attrs {
        Some(allowed) => request
            .payload
            .iter()
            .filter(|(k, _)| allowed.contains(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        None => request.payload.clone(),
    };
    let opt = |v: &Option<String>| Value::String(v.clone().unwrap_or_default());
    let candidates: [(&str, Value); 12] = [
        ("risk", Value::String(request.risk.as_str().into())),
        ("workflow", Value::String(request.agent.clone())),
        ("tool", Value::String(request.action.clone())),
        ("subject", Value::String(request.subject.clone())),
        ("task", opt(&request.task_id)),
        ("task_label", opt(&request.task_label)),
        ("owner_rule", opt(&request.owner)),
        ("source_record_id", opt(&request.source_record_id)),
        (
            "summary",
            Value::Array(request.summary.iter().cloned().map(Value::String).collect()),
        ),
        ("payload", Value::Object(payload)),
        ("local_hour", Value::from(clock.local_hour)),
        ("weekday", Value::String(clock.weekday.into())),
    ];
    Value::Object(
        candidates
            .into_iter()
            .filter(|(k, _)| shape.context_attrs.contains(*k))
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
    )
}
