//! The context Cedar sees, built from a request and the action's schema,
//! and JSON turned into Cedar values.

use cedar_policy::RestrictedExpression;
use gatehouse_core::ActionRequest;
use serde_json::{Map, Value};

use crate::schema_shape::ActionShape;
use crate::Clock;

/// JSON → Cedar value. Cedar has no floating point and no null, so those
/// are refused here with the path of the offending field.
pub(crate) fn restricted(path: &str, value: &Value) -> Result<RestrictedExpression, String> {
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
pub(crate) fn build_context(request: &ActionRequest, clock: Clock, shape: &ActionShape) -> Value {
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
