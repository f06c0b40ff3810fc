//! The request bodies of the three ways to ask for a decision (Gate API,
//! SDK field names, Decide API), and their normalisation into the one
//! [`ActionRequest`] the use cases take.

use gatehouse_core::error::name;
use gatehouse_core::{ActionRequest, Risk, ValidationError};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

/// Limits that keep one request reviewable and bounded in storage, in
/// characters (as JSON Schema's `maxLength` counts), not bytes. The
/// document states them (`gatehouse_server`'s input rules).
pub use gatehouse_core::error::MAX_NAME_LEN;
pub const MAX_TEXT_LEN: usize = 4_000;
pub const MAX_SUMMARY_ITEMS: usize = 50;

/// `POST /api/agent/tasks/{task_id}/requests`: the Gate API's request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GateBody {
    /// The workflow or agent asking (policies see it as the principal).
    pub workflow_name: String,
    #[serde(default)]
    pub task_label: Option<String>,
    /// The action about to run (policies see it as the action).
    pub tool_name: String,
    /// What the action touches (policies see it as the resource).
    pub subject: String,
    /// A sentence for the reviewer.
    #[serde(default)]
    pub preview: Option<String>,
    /// `low`, `medium` or `high`.
    #[schema(example = "high")]
    pub risk_level: String,
    /// Short facts for the reviewer, at most 50.
    #[serde(default)]
    pub summary: Option<Vec<String>>,
    /// The action's arguments, a JSON object: bound by the approval token.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub payload: Option<Value>,
    /// The group that owns this request: with no `@reviewers` on the
    /// policies that send it to review, its members review it (if the
    /// group exists; otherwise any reviewer). It never widens a route a
    /// policy set.
    #[serde(default)]
    pub owner: Option<String>,
    /// Where to POST the resolution once the request is decided after a
    /// review (a Standard Webhooks-signed `decision.resolved`). Its host
    /// must be on the server's callback allowlist.
    #[serde(default)]
    pub callback_url: Option<String>,
    /// Same as the `Idempotency-Key` header.
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `POST /api/gate/requests`: the same request with the SDK's field names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SdkGateBody {
    pub agent: String,
    pub action: String,
    /// `low`, `medium` or `high`.
    pub risk: String,
    pub subject: String,
    /// The action's arguments and reviewable facts, a JSON object (the
    /// payload: policies see it as `context.payload`).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub context: Option<Value>,
    #[serde(default)]
    pub task_id: Option<String>,
    #[serde(default)]
    pub summary: Option<Vec<String>>,
    /// The group that owns this request: with no `@reviewers` on the
    /// policies that send it to review, its members review it (if the
    /// group exists; otherwise any reviewer). It never widens a route a
    /// policy set.
    #[serde(default)]
    pub owner: Option<String>,
    /// Where to POST the resolution once the request is decided after a
    /// review (a Standard Webhooks-signed `decision.resolved`). Its host
    /// must be on the server's callback allowlist.
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

/// `POST /api/decide`: the Decide API's request.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecideBody {
    pub question: String,
    /// Only `single` is supported.
    #[serde(default)]
    pub mode: Option<String>,
    /// `workflow` and `requested_action` are required; `source_record_id`,
    /// `owner_rule`, `risk`, `evidence` (an array) and `task_id` have a
    /// meaning of their own; every other field is a guardrail field
    /// (the payload).
    #[schema(value_type = Object)]
    pub context: Value,
    /// Where to POST the resolution once the request is decided after a
    /// review (a Standard Webhooks-signed `decision.resolved`). Its host
    /// must be on the server's callback allowlist.
    #[serde(default)]
    pub callback_url: Option<String>,
    #[serde(default)]
    pub idempotency_key: Option<String>,
}

fn text(field: &str, value: Option<String>) -> Result<Option<String>, ValidationError> {
    match value {
        Some(v) if v.chars().count() > MAX_TEXT_LEN => Err(ValidationError::new(
            field,
            format!("must be at most {MAX_TEXT_LEN} characters"),
        )),
        other => Ok(other),
    }
}

/// The longest callback URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2_048;

fn callback_url(value: Option<String>) -> Result<Option<String>, ValidationError> {
    match value {
        Some(v) if v.chars().count() > MAX_URL_LEN => Err(ValidationError::new(
            "callback_url",
            format!("must be at most {MAX_URL_LEN} characters"),
        )),
        other => Ok(other),
    }
}

fn summary(items: Option<Vec<String>>) -> Result<Vec<String>, ValidationError> {
    let items = items.unwrap_or_default();
    if items.len() > MAX_SUMMARY_ITEMS {
        return Err(ValidationError::new(
            "summary",
            format!("must have at most {MAX_SUMMARY_ITEMS} items"),
        ));
    }
    for (i, item) in items.iter().enumerate() {
        if item.chars().count() > MAX_TEXT_LEN {
            return Err(ValidationError::new(
                format!("summary[{i}]"),
                format!("must be at most {MAX_TEXT_LEN} characters"),
            ));
        }
    }
    Ok(items)
}

fn object(field: &str, value: Option<Value>) -> Result<Map<String, Value>, ValidationError> {
    match value {
        None | Some(Value::Null) => Ok(Map::new()),
        Some(Value::Object(map)) => Ok(map),
        Some(_) => Err(ValidationError::new(field, "must be a JSON object")),
    }
}

impl GateBody {
    pub fn into_request(self, task_id: String) -> Result<ActionRequest, ValidationError> {
        Ok(ActionRequest {
            agent: name("workflow_name", self.workflow_name)?,
            action: name("tool_name", self.tool_name)?,
            subject: name("subject", self.subject)?,
            risk: Risk::parse("risk_level", &self.risk_level)?,
            summary: summary(self.summary)?,
            payload: object("payload", self.payload)?,
            task_id: Some(name("task_id", task_id)?),
            task_label: text("task_label", self.task_label)?,
            preview: text("preview", self.preview)?,
            owner: self.owner.map(|o| name("owner", o)).transpose()?,
            callback_url: callback_url(self.callback_url)?,
            source_record_id: None,
            question: None,
            evidence: Vec::new(),
        })
    }
}

impl SdkGateBody {
    pub fn into_request(self) -> Result<ActionRequest, ValidationError> {
        let task_id = self.task_id.map(|t| name("task_id", t)).transpose()?;
        Ok(ActionRequest {
            agent: name("agent", self.agent)?,
            action: name("action", self.action)?,
            subject: name("subject", self.subject)?,
            risk: Risk::parse("risk", &self.risk)?,
            summary: summary(self.summary)?,
            payload: object("context", self.context)?,
            task_id,
            task_label: None,
            preview: None,
            owner: self.owner.map(|o| name("owner", o)).transpose()?,
            callback_url: callback_url(self.callback_url)?,
            source_record_id: None,
            question: None,
            evidence: Vec::new(),
        })
    }
}

/// Context keys of the Decide API that have a place in the model; everything
/// else in `context` is a guardrail field and becomes the typed payload.
const DECIDE_KNOWN_KEYS: [&str; 7] = [
    "workflow",
    "requested_action",
    "source_record_id",
    "owner_rule",
    "evidence",
    "risk",
    "task_id",
];

impl DecideBody {
    pub fn into_request(self) -> Result<ActionRequest, ValidationError> {
        if let Some(mode) = &self.mode {
            if mode != "single" {
                return Err(ValidationError::new(
                    "mode",
                    format!("only \"single\" is supported (got {mode:?})"),
                ));
            }
        }
        let mut context = object("context", Some(self.context))?;
        let take_str =
            |ctx: &mut Map<String, Value>, key: &str| -> Result<Option<String>, ValidationError> {
                match ctx.remove(key) {
                    None | Some(Value::Null) => Ok(None),
                    Some(Value::String(s)) => Ok(Some(s)),
                    Some(_) => Err(ValidationError::new(
                        format!("context.{key}"),
                        "must be a string",
                    )),
                }
            };
        let workflow = take_str(&mut context, "workflow")?
            .ok_or_else(|| ValidationError::new("context.workflow", "is required"))?;
        let requested_action = take_str(&mut context, "requested_action")?
            .ok_or_else(|| ValidationError::new("context.requested_action", "is required"))?;
        let source_record_id = take_str(&mut context, "source_record_id")?
            .map(|s| name("context.source_record_id", s))
            .transpose()?;
        let owner = take_str(&mut context, "owner_rule")?;
        let task_id = take_str(&mut context, "task_id")?
            .map(|t| name("context.task_id", t))
            .transpose()?;
        // The Decide API has no risk field of its own; an unspecified risk is
        // treated as medium so the starter policies route it to a reviewer.
        let risk = match take_str(&mut context, "risk")? {
            Some(r) => Risk::parse("context.risk", &r)?,
            None => Risk::Medium,
        };
        let evidence = match context.remove("evidence") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(ValidationError::new("context.evidence", "must be an array")),
        };
        debug_assert!(DECIDE_KNOWN_KEYS.iter().all(|k| !context.contains_key(*k)));
        // The subject is the source record when one is named; otherwise the
        // workflow itself is what the action touches.
        let agent = name("context.workflow", workflow)?;
        let subject = source_record_id.clone().unwrap_or_else(|| agent.clone());
        Ok(ActionRequest {
            agent,
            action: name("context.requested_action", requested_action)?,
            subject,
            risk,
            summary: Vec::new(),
            payload: context,
            task_id,
            task_label: None,
            preview: None,
            owner,
            source_record_id,
            question: text("question", Some(self.question))?,
            evidence,
            callback_url: callback_url(self.callback_url)?,
        })
    }
}

/// A policy test case's input, normalised exactly as the API would: a
/// Gate API body (under the task `policy-test`) or a Decide API body.
pub fn case_request(
    input: gatehouse_policy::cases::CaseInput<'_>,
) -> Result<ActionRequest, String> {
    use gatehouse_policy::cases::CaseInput;
    match input {
        CaseInput::Gate(body) => serde_json::from_value::<GateBody>(body.clone())
            .map_err(|e| e.to_string())?
            .into_request("policy-test".into())
            .map_err(|e| e.to_string()),
        CaseInput::Decide(body) => serde_json::from_value::<DecideBody>(body.clone())
            .map_err(|e| e.to_string())?
            .into_request()
            .map_err(|e| e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn gate_body_from_seed_normalises() {
        let body: GateBody = serde_json::from_value(json!({
            "workflow_name": "Customer Support",
            "task_label": "Refund request for order #8821",
            "tool_name": "issue_refund",
            "subject": "Issue a $500 refund to customer cus_99",
            "risk_level": "high",
            "summary": ["Customer requested refund"],
            "payload": {"amount": 500, "currency": "usd"}
        }))
        .unwrap();
        let req = body.into_request("t1".into()).unwrap();
        assert_eq!(req.agent, "Customer Support");
        assert_eq!(req.action, "issue_refund");
        assert_eq!(req.risk, Risk::High);
        assert_eq!(req.payload["amount"], json!(500));
        assert_eq!(req.task_id.as_deref(), Some("t1"));
    }

    #[test]
    fn unknown_risk_is_rejected_with_field_name() {
        let body: GateBody = serde_json::from_value(json!({
            "workflow_name": "w", "tool_name": "t", "subject": "s", "risk_level": "extreme"
        }))
        .unwrap();
        let err = body.into_request("t".into()).unwrap_err();
        assert_eq!(err.field, "risk_level");
    }

    #[test]
    fn decide_guardrail_fields_become_payload() {
        let body: DecideBody = serde_json::from_value(json!({
            "question": "Approve?",
            "mode": "single",
            "context": {
                "workflow": "billing_discount_gate",
                "requested_action": "apply_discount",
                "source_record_id": "sub_1",
                "discount_percent": 15,
                "owner_rule": "verified",
                "evidence": ["OWNER_RULE_VERIFIED"]
            }
        }))
        .unwrap();
        let req = body.into_request().unwrap();
        assert_eq!(req.action, "apply_discount");
        assert_eq!(req.subject, "sub_1");
        assert_eq!(req.owner.as_deref(), Some("verified"));
        assert_eq!(req.payload.len(), 1);
        assert_eq!(req.payload["discount_percent"], json!(15));
        assert_eq!(req.risk, Risk::Medium);
    }

    #[test]
    fn decide_requires_workflow_and_single_mode() {
        let missing: DecideBody =
            serde_json::from_value(json!({"question": "q", "context": {"requested_action": "a"}}))
                .unwrap();
        assert_eq!(
            missing.into_request().unwrap_err().field,
            "context.workflow"
        );
        let multi: DecideBody = serde_json::from_value(
            json!({"question": "q", "mode": "batch", "context": {"workflow": "w", "requested_action": "a"}}),
        )
        .unwrap();
        assert_eq!(multi.into_request().unwrap_err().field, "mode");
    }

    #[test]
    fn payload_must_be_an_object() {
        let body: GateBody = serde_json::from_value(json!({
            "workflow_name": "w", "tool_name": "t", "subject": "s", "risk_level": "low", "payload": [1]
        }))
        .unwrap();
        assert_eq!(body.into_request("t".into()).unwrap_err().field, "payload");
    }
}
