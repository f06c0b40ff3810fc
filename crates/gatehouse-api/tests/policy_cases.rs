//! The example policy sets pass their own table-driven cases, read through
//! the same request shapes the API takes.

use std::path::PathBuf;

use gatehouse_api::requests::case_request;
use gatehouse_policy::cases::{parse_cases, run_case};
use gatehouse_policy::{read_policy_dir, Engine, EngineOptions};

fn run_example_cases(name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name);
    let engine = Engine::compile(read_policy_dir(&dir).unwrap(), EngineOptions::default()).unwrap();
    let cases = parse_cases(&std::fs::read_to_string(dir.join("cases.json")).unwrap()).unwrap();
    assert!(cases.len() >= 3, "example {name} should have real cases");
    let failed: Vec<_> = cases
        .iter()
        .map(|c| run_case(&engine, c, case_request))
        .filter(|r| !r.passed())
        .collect();
    assert!(failed.is_empty(), "failing cases in {name}: {failed:#?}");
}

#[test]
fn starter_example_cases_pass() {
    run_example_cases("starter");
}

#[test]
fn seed_scenario_cases_pass() {
    run_example_cases("seed-scenarios");
}

#[test]
fn mcp_filesystem_cases_pass() {
    run_example_cases("mcp-filesystem");
}
