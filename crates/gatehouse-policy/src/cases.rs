//! Table-driven policy tests (`gatehouse policy test DIR CASES.json`), so
//! users can test their own policies in their own CI.

use gatehouse_core::{DecideBody, GateBody};
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

pub fn run_case(engine: &Engine, case: &Case) -> CaseResult {
    let request = match (&case.request, &case.decide) {
        (Some(gate), None) => serde_json::from_value::<GateBody>(gate.clone())
            .map_err(|e| e.to_string())
            .and_then(|b| {
                b.into_request("policy-test".into())
                    .map_err(|e| e.to_string())
            }),
        (None, Some(decide)) => serde_json::from_value::<DecideBody>(decide.clone())
            .map_err(|e| e.to_string())
            .and_then(|b| b.into_request().map_err(|e| e.to_string())),
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
