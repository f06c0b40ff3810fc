//! `POST /api/policies/always-rejected` through the router: only what a
//! decide-tier policy rejects whatever the request says is named, for
//! agents and admins, with bad input refused.

mod common;

use axum::http::StatusCode;
use common::app_with;
use gatehouse_app::AppConfig;
use gatehouse_policy::PolicyFile;
use serde_json::json;

fn files() -> Vec<PolicyFile> {
    // The schema the policy crate's own screening tests use.
    let schema = include_str!("../../gatehouse-policy/testdata/screen.cedarschema");
    let policies = r#"permit(principal, action, resource);
        @id("no-deletes") forbid(principal, action == Action::"delete", resource);
        @id("no-risky-writes") forbid(principal, action == Action::"write", resource) when { context.risk == "high" };
        @id("review-the-rest") @tier("review") forbid(principal, action == Action::"default", resource);"#;
    vec![
        PolicyFile::new("policies.cedar", policies),
        PolicyFile::new("schema.cedarschema", schema),
    ]
}

#[tokio::test]
async fn names_only_what_can_never_be_allowed() {
    let app = app_with(
        files(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let body =
        json!({"agent": "bot", "actions": ["read", "delete", "write", "undeclared", "delete"]});
    for key in [&app.agent, &app.admin] {
        let (status, answer) = app
            .call(
                "POST",
                "/api/policies/always-rejected",
                Some(key),
                Some(body.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        // Conditional rejections and review are decided per request.
        assert_eq!(
            answer["always_rejected"],
            json!(["delete", "delete"]),
            "{answer}"
        );
        assert!(
            answer["policy_version"]
                .as_str()
                .unwrap()
                .starts_with("pv_"),
            "{answer}"
        );
    }
    let (status, answer) = app
        .call(
            "POST",
            "/api/policies/always-rejected",
            Some(&app.reviewer),
            Some(body.clone()),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{answer}");
    let (status, _) = app
        .call("POST", "/api/policies/always-rejected", None, Some(body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    let too_many: Vec<String> = (0..501).map(|i| format!("a{i}")).collect();
    for (bad, code) in [
        (
            json!({"agent": "bot", "actions": too_many}),
            "validation_failed",
        ),
        (
            json!({"agent": " ", "actions": ["read"]}),
            "validation_failed",
        ),
        (
            json!({"agent": "bot", "actions": [""]}),
            "validation_failed",
        ),
        (json!({"agent": "bot"}), "validation_failed"),
        (
            json!({"agent": "bot", "actions": ["read"], "extra": 1}),
            "validation_failed",
        ),
    ] {
        let (status, answer) = app
            .call(
                "POST",
                "/api/policies/always-rejected",
                Some(&app.agent),
                Some(bad.clone()),
            )
            .await;
        assert!(status.is_client_error(), "{bad}: {status} {answer}");
        assert_eq!(answer["error"]["code"], code, "{bad}: {answer}");
    }
}
