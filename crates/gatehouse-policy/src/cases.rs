//! Table-driven policy tests (`gatehouse policy test DIR CASES.json`), so
//! users can test their own policies in their own CI.

use gatehouse_core::ActionRequest;
use serde::Deserialize;
use serde_json::Value;
use time::OffsetDateTime;

use crate::{Clock, Engine};

/// One case: a Gate API body (or a Decide API body under `decide`), an
/// optional request time, and the expected verdict (`allow`, `reject`,
/// `pending_review`, or `invalid` for input the schema refuses).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: String,
    #[serde(default)]
    pub request: Option<Value>,
    #[serde(default)]
    pub decide: Option<Value>,
    #[serde(default, with = "time::serde::rfc3339::option")]
    pub at: Option<OffsetDateTime>,
    pub expect: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseResult {
    pub name: String,
    pub expected: String,
    pub actual: String,
    pub detail: String,
}

impl CaseResult {
    pub fn passed(&self) -> bool {
        self.expected == self.actual
    }
}

/// A fixed Monday noon (UTC), so cases without `at` are reproducible.
pub fn default_case_time() -> OffsetDateTime {
    time::macros::datetime!(2026-01-05 12:00 UTC)
}

pub fn parse_cases(json: &str) -> Result<Vec<Case>, serde_json::Error> {
    serde_json::from_str(json)
}

/// What a case asks, as written in the cases file; the caller turns it
/// into an [`ActionRequest`] exactly as the API would (the wire shapes
/// live in `gatehouse-api`).
pub enum CaseInput<'a> {
    /// A Gate API body (`POST /api/agent/tasks/{task_id}/requests`).
    Gate(&'a Value),
    /// A Decide API body (`POST /api/decide`).
    Decide(&'a Value),
}

/// Runs one case; `normalise` turns its input into the request the API
/// would evaluate, or says why the API would refuse it.
pub fn run_case(
    engine: &Engine,
    case: &Case,
    normalise: impl FnOnce(CaseInput<'_>) -> Result<ActionRequest, String>,
) -> CaseResult {
    let request = match (&case.request, &case.decide) {
        (Some(gate), None) => normalise(CaseInput::Gate(gate)),
        (None, Some(decide)) => normalise(CaseInput::Decide(decide)),
        _ => Err("a case needs exactly one of \"request\" or \"decide\"".to_string()),
    };
    let clock = Clock::from_datetime(case.at.unwrap_or_else(default_case_time));
    let (actual, detail) = match request.map(|r| engine.evaluate(&r, clock)) {
        Err(e) => ("invalid".to_string(), e),
        Ok(Err(e)) => ("invalid".to_string(), e.to_string()),
        Ok(Ok(eval)) => (
            serde_json::to_value(eval.verdict)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            eval.reasons
                .iter()
                .map(|r| r.code.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        ),
    };
    CaseResult {
        name: case.name.clone(),
        expected: case.expect.clone(),
        actual,
        detail,
    }
}
