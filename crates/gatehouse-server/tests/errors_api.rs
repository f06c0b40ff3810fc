//! Bad and hostile input, health, readiness and the API document.

mod common;
use axum::http::StatusCode;

use common::{app, app_with, app_with_http, seed_gate_body, seed_policies};
use gatehouse_app::AppConfig;
use gatehouse_policy::starter_files;
use serde_json::json;

#[tokio::test]
async fn bad_inputs_get_stable_error_codes() {
    let app = app_with_http(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
        gatehouse_server::ServerConfig {
            body_limit: 1024,
            ..Default::default()
        },
    )
    .await;
    let path = "/api/agent/tasks/t/requests";
    let (status, _, body) = app
        .call_raw(
            "POST",
            path,
            Some(&app.agent),
            Some("{not json".into()),
            &[],
        )
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let mut req = seed_gate_body();
    req["risk_level"] = json!("extreme");
    let (status, body) = app.call("POST", path, Some(&app.agent), Some(req)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("validation_failed"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("risk_level"));
    let (status, body) = app
        .call(
            "POST",
            path,
            Some(&app.agent),
            Some(json!({"workflow_name": "w"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let mut big = seed_gate_body();
    big["payload"]["blob"] = json!("x".repeat(4096));
    let (status, body) = app.call("POST", path, Some(&app.agent), Some(big)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large"))
    );
    // A wait that is not a number, or an unknown parameter, is refused.
    for query in ["wait=soon", "wait=-1", "wiat=5"] {
        let (status, body) = app
            .call(
                "GET",
                &format!("/api/gate/requests/x?{query}"),
                Some(&app.agent),
                None,
            )
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{query}: {body}"
        );
    }
    // A wait above 60 s is capped, not refused: a final decision answers at once.
    let mut low = seed_gate_body();
    low["risk_level"] = "low".into();
    let (_, allowed) = app.call("POST", path, Some(&app.agent), Some(low)).await;
    let (status, body) = app
        .call(
            "GET",
            &format!(
                "/api/gate/requests/{}?wait=3600",
                allowed["id"].as_str().unwrap()
            ),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(
        (status, body["status"].as_str()),
        (StatusCode::OK, Some("allow"))
    );
    let (status, _) = app
        .call("GET", "/api/gate/requests/dec_nope", Some(&app.agent), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // A wrong method is a 405 in the JSON error shape, saying what is allowed.
    let (status, headers, body) = app
        .call_raw("PUT", "/api/decide", Some(&app.agent), None, &[])
        .await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{body}");
    assert_eq!(body["error"]["code"], "method_not_allowed");
    assert_eq!(headers["allow"], "POST");
    assert_eq!(
        app.call("GET", "/nowhere", None, None).await.0,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn health_and_readiness() {
    let app = app().await;
    assert_eq!(
        app.call("GET", "/healthz", None, None).await.0,
        StatusCode::OK
    );
    let (status, ready) = app.call("GET", "/readyz", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ready["policy_version"], app.app.engine().version());
}

#[tokio::test]
async fn openapi_documents_every_route() {
    let app = app().await;
    let (status, doc) = app.call("GET", "/openapi.json", None, None).await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().expect("paths");
    let routes = [
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/openapi.json", "get"),
        ("/api/whoami", "get"),
        ("/api/agent/tasks/{task_id}/requests", "post"),
        ("/api/agent/tasks/{task_id}/events", "post"),
        ("/api/agent/tasks/{task_id}/events", "get"),
        ("/api/gate/requests", "post"),
        ("/api/gate/requests/{id}", "get"),
        ("/api/gate/requests/{id}/review", "post"),
        ("/api/decisions", "get"),
        ("/api/decide", "post"),
        ("/api/decision/{id}", "get"),
        ("/api/decision/{id}/review", "post"),
        ("/api/decision/{id}/verify", "get"),
        ("/api/decision/{id}/replay", "get"),
        ("/api/keys", "get"),
        ("/api/keys", "post"),
        ("/api/keys/{id}", "delete"),
        ("/api/log/checkpoint", "get"),
        ("/api/log/key", "get"),
        ("/api/log/proof/inclusion", "get"),
        ("/api/log/proof/consistency", "get"),
        ("/.well-known/jwks.json", "get"),
        ("/api/tokens/redeem", "post"),
        ("/api/decision/{id}/executions", "post"),
        ("/api/decision/{id}/executions", "get"),
        ("/api/decision/{id}/outcomes", "post"),
        ("/api/gate/requests/{id}/executions", "post"),
        ("/api/gate/requests/{id}/executions", "get"),
        ("/api/gate/requests/{id}/outcomes", "post"),
        ("/api/decision/{id}/packet", "get"),
        ("/metrics", "get"),
        ("/api/users", "get"),
        ("/api/users", "post"),
        ("/api/users/{name}", "get"),
        ("/api/users/{name}/disable", "post"),
        ("/api/users/{name}/groups", "put"),
        ("/api/users/{name}/password", "put"),
        ("/api/webhooks", "get"),
        ("/api/webhooks", "post"),
        ("/api/webhooks/{id}", "delete"),
        ("/api/deliveries", "get"),
        ("/api/deliveries/{id}", "get"),
        ("/api/deliveries/{id}/retry", "post"),
        ("/api/hooks", "get"),
        ("/api/hooks", "post"),
        ("/api/hooks/{id}", "delete"),
        ("/hooks/{hook_id}", "post"),
        ("/api/policies/always-rejected", "post"),
    ];
    for (path, method) in routes {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().unwrap().len())
            .sum::<usize>(),
        routes.len()
    );
    // Generated clients name their functions after operation ids: they
    // must be unique (OpenAPI requires it).
    let mut ids: Vec<&str> = paths
        .values()
        .flat_map(|p| p.as_object().unwrap().values())
        .map(|op| {
            op["operationId"]
                .as_str()
                .expect("every operation has an id")
        })
        .collect();
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "operation ids repeat");
}

#[tokio::test]
async fn hostile_inputs_never_produce_a_server_error() {
    let app = app_with(
        seed_policies(),
        AppConfig {
            rate_limit_per_second: 0,
            ..Default::default()
        },
    )
    .await;
    let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
    let bodies: Vec<(&str, String)> = vec![
        ("/api/agent/tasks/t/requests", "null".into()),
        ("/api/agent/tasks/t/requests", "[]".into()),
        ("/api/agent/tasks/t/requests", "\"str\"".into()),
        ("/api/agent/tasks/t/requests", format!(r#"{{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","payload":{deep}}}"#)),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"issue_refund","subject":"s","risk_level":"low","payload":{"amount":1e400,"currency":"usd"}}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"issue_refund","subject":"s","risk_level":"low","payload":{"amount":-9223372036854775808,"currency":"usd"}}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"\u0000","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"Action::\"x\"","subject":"\"};","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/t/requests", format!(r#"{{"workflow_name":"{}","tool_name":"t","subject":"s","risk_level":"low"}}"#, "w".repeat(5000))),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","summary":[1,2]}"#.into()),
        ("/api/agent/tasks/t/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low","extra":1}"#.into()),
        ("/api/agent/tasks/%20/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/agent/tasks/%E2%9C%93/requests", r#"{"workflow_name":"w","tool_name":"t","subject":"s","risk_level":"low"}"#.into()),
        ("/api/gate/requests", r#"{"agent":"a","action":"delete_record","risk":"low","subject":"s","context":{"local_hour":"x"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"apply_discount","discount_percent":"15"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"apply_discount","discount_percent":null}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":1,"requested_action":"a"}}"#.into()),
        ("/api/decide", r#"{"question":"q","context":[]}"#.into()),
        ("/api/decide", r#"{"question":"q","context":{"workflow":"w","requested_action":"a","evidence":"x"}}"#.into()),
        ("/api/decide", "{\"question\": \"\u{fffd}\", \"context\": {}}".into()),
        ("/api/gate/requests/dec_x/review", r#"{"decision":"approve","comment":null}"#.into()),
        ("/api/agent/tasks/t/events", r#"{"kind":"","data":{}}"#.into()),
        ("/api/agent/tasks/t/events", r#"{"kind":"k","decision_id":"dec_missing"}"#.into()),
        ("/api/keys", r#"{"role":"superuser"}"#.into()),
    ];
    for (path, body) in bodies {
        for key in [&app.agent, &app.reviewer, &app.admin] {
            let (status, _, response) = app
                .call_raw("POST", path, Some(key), Some(body.clone()), &[])
                .await;
            assert!(
                !status.is_server_error(),
                "{path} {body:.80} → {status} {response}"
            );
            if !status.is_success() {
                assert!(
                    response["error"]["code"].is_string(),
                    "{path} {body:.80} → {response}"
                );
            }
            if status.is_success() && body.contains("\"amount\"") {
                assert_ne!(
                    response["status"], "allow",
                    "hostile amount was allowed: {body:.80}"
                );
            }
        }
    }
}

/// A body is read as UTF-8 JSON as it arrives: another charset or any
/// content encoding is refused, not parsed as something it is not.
#[tokio::test]
async fn bodies_in_another_charset_or_encoding_are_415() {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let app = app().await;
    let body = seed_gate_body().to_string();
    let send = |content_type: &'static str, encoding: Option<&'static str>| {
        let mut req = axum::http::Request::builder()
            .method("POST")
            .uri("/api/agent/tasks/t/requests")
            .header("authorization", format!("Bearer {}", app.agent))
            .header("content-type", content_type);
        if let Some(e) = encoding {
            req = req.header("content-encoding", e);
        }
        let req = req.body(axum::body::Body::from(body.clone())).unwrap();
        let router = app.router.clone();
        async move {
            let response = router.oneshot(req).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
            (status, json)
        }
    };
    for (content_type, encoding) in [
        ("application/json; charset=utf-16", None),
        ("application/json; charset=\"ISO-8859-1\"", None),
        ("application/json", Some("gzip")),
        ("application/json", Some("br")),
    ] {
        let (status, body) = send(content_type, encoding).await;
        assert_eq!(
            status,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "{content_type} {encoding:?}: {body}"
        );
        assert_eq!(body["error"]["code"], "unsupported_media_type");
    }
    for (content_type, encoding) in [
        ("application/json; charset=utf-8", None),
        ("application/json; charset=UTF-8", Some("identity")),
    ] {
        let (status, body) = send(content_type, encoding).await;
        assert_eq!(status, StatusCode::CREATED, "{content_type}: {body}");
    }
}

/// PostgreSQL cannot store NUL, so text holding one is refused with 400
/// before it reaches either store: in bodies (at any depth), paths and
/// query strings.
#[tokio::test]
async fn nul_characters_are_refused_before_any_store() {
    let app = app().await;
    let mut at_depth = seed_gate_body();
    at_depth["payload"]["note"] = json!({"inner": "a\u{0}b"});
    let mut in_key = seed_gate_body();
    in_key["idempotency_key"] = json!("k\u{0}");
    let mut in_subject = seed_gate_body();
    in_subject["subject"] = json!("\u{0}");
    for body in [at_depth, in_key, in_subject] {
        let (status, answer) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(&app.agent),
                Some(body),
            )
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "bad_request");
        assert!(answer["error"]["message"].as_str().unwrap().contains("NUL"));
    }
    let (status, _) = app
        .call(
            "POST",
            "/api/keys",
            Some(&app.admin),
            Some(json!({"role": "agent", "name": "a\u{0}"})),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for path in [
        "/api/gate/requests/dec_%00",
        "/api/decisions?status=pending_review%00",
    ] {
        let (status, answer) = app.call("GET", path, Some(&app.auditor), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {answer}");
        assert!(answer["error"]["request_id"].is_string(), "{answer}");
    }
    // A backslash followed by "u0000" is ordinary text.
    let mut literal = seed_gate_body();
    literal["payload"]["note"] = json!("\\u0000");
    let (status, answer) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(literal),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{answer}");
}

/// RFC 7493: a key repeated within one object is refused at any depth,
/// named by its path, so a policy and an executor can never read different
/// values from the same bytes.
#[tokio::test]
async fn duplicate_keys_are_refused_at_any_depth() {
    let app = app().await;
    let gate = r#"{"workflow_name":"w","tool_name":"issue_refund","subject":"s","risk_level":"low",
        "payload":{"amount":5,"currency":"usd","amount":50000}}"#;
    let decide = r#"{"question":"q","context":{"workflow":"w","requested_action":"a","risk":"high","risk":"low"}}"#;
    let top =
        r#"{"question":"q","question":"r","context":{"workflow":"w","requested_action":"a"}}"#;
    for (path, body, expected) in [
        ("/api/agent/tasks/t/requests", gate, "payload.amount"),
        ("/api/decide", decide, "context.risk"),
        ("/api/decide", top, "question"),
    ] {
        let (status, _, answer) = app
            .call_raw("POST", path, Some(&app.agent), Some(body.to_string()), &[])
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{answer}");
        assert_eq!(answer["error"]["code"], "duplicate_key");
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains(expected),
            "{answer}"
        );
    }
    // Nothing was stored.
    let (_, list) = app
        .call("GET", "/api/decisions", Some(&app.auditor), None)
        .await;
    assert_eq!(list["items"], json!([]), "{list}");
}
