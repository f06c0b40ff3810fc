//! Reviews, long-polls, expiry and task events.

mod common;
use axum::http::StatusCode;
use std::time::{Duration, Instant};

use common::{app, app_with, pending};
use gatehouse_app::AppConfig;
use gatehouse_policy::starter_files;
use serde_json::json;

#[tokio::test]
async fn reviewer_approves_once_and_only_reviewers_may_review() {
    let app = app().await;
    let id = pending(&app).await;
    let path = format!("/api/gate/requests/{id}/review");
    let approve = json!({"decision": "approve", "comment": "verified with customer"});
    let (status, body) = app
        .call("POST", &path, Some(&app.agent), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, body) = app
        .call("POST", &path, Some(&app.auditor), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");

    let (status, body) = app
        .call("POST", &path, Some(&app.reviewer), Some(approve.clone()))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "approved");
    assert_eq!(body["may_proceed"], true);
    assert_eq!(body["review"]["reviewer_name"], "Rita");

    let (status, body) = app
        .call(
            "POST",
            &path,
            Some(&app.reviewer),
            Some(json!({"decision": "reject"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(body["error"]["code"], "not_pending");

    let (status, body) = app
        .call(
            "POST",
            &format!("/api/decision/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "maybe"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
}

#[tokio::test]
async fn a_key_may_not_review_its_own_request() {
    let app = app().await;
    let d = gatehouse_store::conformance::sample_decision(
        gatehouse_core::Verdict::PendingReview,
        &app.reviewer_id,
        None,
        "t",
    );
    app.store.create_decision(&d, None).await.unwrap();
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{}/review", d.id),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"]["code"], "self_review_forbidden");
}

#[tokio::test]
async fn long_poll_returns_as_soon_as_the_review_lands() {
    let app = app().await;
    let id = pending(&app).await;
    let reviewer = app.reviewer.clone();
    let router = app.router.clone();
    let review_path = format!("/api/gate/requests/{id}/review");
    let started = Instant::now();
    let reviewer_task = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let req = axum::http::Request::builder()
            .method("POST")
            .uri(review_path)
            .header("authorization", format!("Bearer {reviewer}"))
            .header("content-type", "application/json")
            .body(axum::body::Body::from(
                r#"{"decision":"reject","comment":"no"}"#,
            ))
            .unwrap();
        tower::ServiceExt::oneshot(router, req)
            .await
            .unwrap()
            .status()
    });
    let (status, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}?wait=20"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "rejected");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "long-poll should wake on review"
    );
    assert_eq!(reviewer_task.await.unwrap(), StatusCode::OK);
    // A wait on a pending request with no review returns pending after the wait.
    let other = pending(&app).await;
    let (_, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{other}?wait=1"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(body["status"], "pending_review");
}

#[tokio::test]
async fn pending_decisions_expire_and_cannot_be_approved_late() {
    let app = app_with(
        starter_files(),
        AppConfig {
            rate_limit_per_second: 0,
            default_review_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    let id = pending(&app).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (_, body) = app
        .call(
            "GET",
            &format!("/api/gate/requests/{id}"),
            Some(&app.agent),
            None,
        )
        .await;
    assert_eq!(body["status"], "expired");
    assert_eq!(body["may_proceed"], false);
    let (status, body) = app
        .call(
            "POST",
            &format!("/api/gate/requests/{id}/review"),
            Some(&app.reviewer),
            Some(json!({"decision": "approve"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

#[tokio::test]
async fn task_events_link_to_decisions() {
    let app = app().await;
    let id = pending(&app).await;
    let (status, event) = app
        .call(
            "POST",
            "/api/agent/tasks/t/events",
            Some(&app.agent),
            Some(json!({"kind": "action_executed", "decision_id": id, "message": "refund sent", "data": {"refund_id": "re_1"}})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{event}");
    let (status, _) = app
        .call(
            "POST",
            "/api/agent/tasks/other/events",
            Some(&app.agent),
            Some(json!({"kind": "x", "decision_id": id})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, list) = app
        .call(
            "GET",
            "/api/agent/tasks/t/events",
            Some(&app.reviewer),
            None,
        )
        .await;
    assert_eq!(list["items"][0]["decision_id"], id);
    assert_eq!(list["items"][0]["data"]["refund_id"], "re_1");
}
