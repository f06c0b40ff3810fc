//! What the model is told when a call is not run.

use serde_json::Value;

use crate::gate::ToolError;

fn reasons(view: &Value) -> String {
    let list: Vec<&str> = view["reasons"]
        .as_array()
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if list.is_empty() {
        "no reason given".to_string()
    } else {
        list.join("; ")
    }
}

pub(super) fn rejected_by_policy(id: &str, view: &Value) -> String {
    format!(
        "Gatehouse rejected this call, so the tool was not run (decision {id}): {}.",
        reasons(view)
    )
}

pub(super) fn rejected_by_reviewer(id: &str, view: &Value) -> String {
    let comment = view["review"]["comment"]
        .as_str()
        .filter(|c| !c.is_empty())
        .map(|c| format!(": {c}"))
        .unwrap_or_default();
    format!("A reviewer rejected this call in Gatehouse, so the tool was not run (decision {id}){comment}.")
}

pub(super) fn still_pending(id: &str, link: &str) -> String {
    format!(
        "This call is waiting for a person to approve it in Gatehouse (decision {id}, {link}). \
         The tool was not run yet. Retry the same call with the same arguments later: once \
         it is approved, the retry runs it. Different arguments need a new approval."
    )
}

/// The message for a call refused because Gatehouse could not decide it.
pub fn failed_closed(e: &ToolError) -> String {
    format!(
        "Gatehouse could not decide this call, so the tool was not run (fail closed): {}: {}",
        e.code, e.message
    )
}
