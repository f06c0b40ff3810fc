use std::path::PathBuf;

use gatehouse_core::{ActionRequest, Risk, Verdict};
use gatehouse_policy::{
    read_policy_dir, starter_files, Clock, Engine, EngineOptions, PolicyError, PolicyFile,
    UnknownActionMode,
};
use serde_json::json;

fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/policies")
        .join(name)
}

#[test]
fn builtin_starter_is_the_example_folder() {
    let from_dir = read_policy_dir(&example("starter")).unwrap();
    let builtin = starter_files();
    let engine_a = Engine::compile(from_dir, EngineOptions::default()).unwrap();
    let engine_b = Engine::compile(builtin, EngineOptions::default()).unwrap();
    assert_eq!(engine_a.version(), engine_b.version());
}

fn request(tool: &str, risk: &str, payload: serde_json::Value) -> ActionRequest {
    ActionRequest {
        agent: "w".into(),
        action: tool.into(),
        subject: "s".into(),
        risk: Risk::parse("risk_level", risk).unwrap(),
        summary: Vec::new(),
        payload: payload.as_object().cloned().unwrap_or_default(),
        task_id: Some("t".into()),
        task_label: None,
        preview: None,
        owner: None,
        source_record_id: None,
        question: None,
        evidence: Vec::new(),
        callback_url: None,
    }
}

fn noon() -> Clock {
    Clock {
        local_hour: 12,
        weekday: "monday",
    }
}

fn seed_engine(options: EngineOptions) -> Engine {
    Engine::compile(
        read_policy_dir(&example("seed-scenarios")).unwrap(),
        options,
    )
    .unwrap()
}

#[test]
fn fractional_money_is_an_input_error_not_an_allow() {
    let engine = seed_engine(EngineOptions::default());
    let err = engine
        .evaluate(
            &request(
                "issue_refund",
                "low",
                json!({"amount": 10.5, "currency": "usd"}),
            ),
            noon(),
        )
        .unwrap_err();
    assert!(err.0.contains("issue_refund"), "{err}");
    assert!(err.0.contains("payload.amount is 10.5"), "{err}");
}

#[test]
fn wrong_types_and_nulls_are_input_errors() {
    let engine = seed_engine(EngineOptions::default());
    let text = engine
        .evaluate(
            &request(
                "issue_refund",
                "low",
                json!({"amount": "500", "currency": "usd"}),
            ),
            noon(),
        )
        .unwrap_err();
    assert!(text.0.contains("issue_refund"), "{text}");
    let null = engine
        .evaluate(
            &request(
                "issue_refund",
                "low",
                json!({"amount": null, "currency": "usd"}),
            ),
            noon(),
        )
        .unwrap_err();
    assert!(null.0.contains("payload.amount is null"), "{null}");
    let huge = engine
        .evaluate(
            &request(
                "issue_refund",
                "low",
                json!({"amount": 18446744073709551615u64, "currency": "usd"}),
            ),
            noon(),
        )
        .unwrap_err();
    assert!(
        huge.0.contains("outside the 64-bit integer range"),
        "{huge}"
    );
}

#[test]
fn missing_declared_payload_field_is_an_input_error() {
    let engine = seed_engine(EngineOptions::default());
    assert!(engine
        .evaluate(
            &request("issue_refund", "low", json!({"currency": "usd"})),
            noon()
        )
        .is_err());
}

#[test]
fn undeclared_payload_fields_are_ignored_by_policies() {
    let engine = seed_engine(EngineOptions::default());
    let eval = engine
        .evaluate(
            &request(
                "apply_discount",
                "low",
                json!({"discount_percent": 5, "note": 1.25}),
            ),
            noon(),
        )
        .unwrap();
    assert_eq!(eval.verdict, Verdict::Allow);
    assert_eq!(eval.context["payload"], json!({"discount_percent": 5}));
}

#[test]
fn review_timeout_annotation_is_reported() {
    let engine = seed_engine(EngineOptions::default());
    let eval = engine
        .evaluate(&request("deploy_production", "low", json!({})), noon())
        .unwrap();
    assert_eq!(eval.verdict, Verdict::PendingReview);
    assert_eq!(
        eval.review_timeout,
        Some(std::time::Duration::from_secs(7200))
    );
    assert_eq!(eval.token_ttl, Some(std::time::Duration::from_secs(300)));
    assert_eq!(
        eval.reasons[0].policy_id.as_deref(),
        Some("deploy-production-needs-review")
    );
}

fn without_default(options: EngineOptions) -> Engine {
    let files = vec![
        PolicyFile {
            name: "p.cedar".into(),
            text: "@id(\"all\") permit(principal, action, resource);".into(),
        },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: "entity Agent; entity Subject; action \"send_email\" appliesTo { principal: Agent, resource: Subject, context: {} };".into(),
        },
    ];
    Engine::compile(files, options).unwrap()
}

#[test]
fn unknown_action_goes_to_review_or_reject_by_flag() {
    let review = without_default(EngineOptions::default());
    let eval = review
        .evaluate(&request("wire_money", "low", json!({})), noon())
        .unwrap();
    assert_eq!(eval.verdict, Verdict::PendingReview);
    let reject = without_default(EngineOptions {
        unknown_action: UnknownActionMode::Reject,
    });
    let eval = reject
        .evaluate(&request("wire_money", "low", json!({})), noon())
        .unwrap();
    assert_eq!(eval.verdict, Verdict::Reject);
    let known = reject
        .evaluate(&request("send_email", "low", json!({})), noon())
        .unwrap();
    assert_eq!(known.verdict, Verdict::Allow);
}

#[test]
fn evaluation_error_rejects() {
    let files = vec![
        PolicyFile {
            name: "p.cedar".into(),
            text: r#"@id("all") permit(principal, action, resource);
@id("overflow") @tier("review") forbid(principal, action, resource) when { context.payload.n * 9223372036854775807 > 0 };"#
                .into(),
        },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: "entity Agent; entity Subject; action \"calc\" appliesTo { principal: Agent, resource: Subject, context: { payload: { n: Long } } };".into(),
        },
    ];
    let engine = Engine::compile(files, EngineOptions::default()).unwrap();
    let eval = engine
        .evaluate(&request("calc", "low", json!({"n": 2})), noon())
        .unwrap();
    assert_eq!(eval.verdict, Verdict::Reject);
    assert_eq!(eval.reasons[0].code, "POLICY_EVALUATION_ERROR");
}

#[test]
fn no_permit_rejects() {
    let files = vec![
        PolicyFile { name: "p.cedar".into(), text: "@id(\"x\") forbid(principal, action, resource) when { false };".into() },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: "entity Agent; entity Subject; action \"default\" appliesTo { principal: Agent, resource: Subject, context: {} };".into(),
        },
    ];
    let engine = Engine::compile(files, EngineOptions::default()).unwrap();
    let eval = engine
        .evaluate(&request("anything", "low", json!({})), noon())
        .unwrap();
    assert_eq!(eval.verdict, Verdict::Reject);
    assert_eq!(eval.reasons[0].code, "NO_PERMIT");
}

#[test]
fn invalid_policy_names_file_and_line() {
    let files = vec![
        PolicyFile {
            name: "bad.cedar".into(),
            text: "@id(\"ok\") permit(principal, action, resource);\n\n@id(\"typo\") forbid(principal, action, resource) when { context.riks == \"high\" };".into(),
        },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: "entity Agent; entity Subject; action \"default\" appliesTo { principal: Agent, resource: Subject, context: { risk: String } };".into(),
        },
    ];
    let err = Engine::compile(files, EngineOptions::default()).unwrap_err();
    let PolicyError::Invalid(problems) = err else {
        panic!("expected Invalid")
    };
    assert!(problems[0].starts_with("bad.cedar:3:"), "{problems:?}");
}

#[test]
fn syntax_error_names_file_and_line() {
    let files = vec![
        PolicyFile { name: "a.cedar".into(), text: "permit(principal, action, resource);\npermit(principal action);".into() },
        PolicyFile {
            name: "s.cedarschema".into(),
            text: "entity Agent; entity Subject; action \"default\" appliesTo { principal: Agent, resource: Subject, context: {} };".into(),
        },
    ];
    let PolicyError::Invalid(problems) =
        Engine::compile(files, EngineOptions::default()).unwrap_err()
    else {
        panic!("expected Invalid")
    };
    assert!(problems[0].starts_with("a.cedar:2:"), "{problems:?}");
}

#[test]
fn version_changes_with_any_file_byte() {
    let mut files = starter_files();
    let a = Engine::compile(files.clone(), EngineOptions::default()).unwrap();
    files[0].text.push(' ');
    let b = Engine::compile(files, EngineOptions::default()).unwrap();
    assert_ne!(a.version(), b.version());
}
