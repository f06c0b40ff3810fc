//! People and groups over the admin API, and keys that belong to a person.

mod common;
use axum::http::StatusCode;

use common::app;
use serde_json::json;

#[tokio::test]
async fn admins_manage_users_and_their_keys() {
    let app = app().await;
    let ana = json!({"name": "ana", "groups": ["legal", "finance", "legal"],
        "email": "ana@example.com", "password": "correct horse battery"});
    // Only admins manage users.
    let (status, body) = app
        .call("POST", "/api/users", Some(&app.reviewer), Some(ana.clone()))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    let (status, body) = app
        .call("POST", "/api/users", Some(&app.admin), Some(ana.clone()))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["role"], "reviewer");
    assert_eq!(body["groups"], json!(["finance", "legal"]));
    assert!(
        body.get("password").is_none() && body.get("password_hash").is_none(),
        "{body}"
    );
    let (status, body) = app
        .call("POST", "/api/users", Some(&app.admin), Some(ana))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("already_exists"))
    );

    // Bad input is refused with the field named; nothing is stored.
    for (bad, needle) in [
        (
            json!({"name": "bo b", "password": "long enough pw"}),
            "user name",
        ),
        (json!({"name": "bob", "password": "short"}), "password"),
        (
            json!({"name": "bob", "groups": ["a,b"], "password": "long enough pw"}),
            "group name",
        ),
        (
            json!({"name": "bob", "role": "agent", "password": "long enough pw"}),
            "role",
        ),
        (
            json!({"name": "bob", "email": "nobody", "password": "long enough pw"}),
            "email",
        ),
    ] {
        let (status, body) = app
            .call("POST", "/api/users", Some(&app.admin), Some(bad))
            .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(
            body["error"]["message"].as_str().unwrap().contains(needle),
            "{body}"
        );
    }
    let (_, list) = app.call("GET", "/api/users", Some(&app.admin), None).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1, "{list}");

    let (status, body) = app
        .call(
            "PUT",
            "/api/users/ana/groups",
            Some(&app.admin),
            Some(json!({"groups": ["finance-leads"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["groups"], json!(["finance-leads"]));
    let (status, _) = app
        .call(
            "PUT",
            "/api/users/ana/password",
            Some(&app.admin),
            Some(json!({"password": "another long one"})),
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(app
        .app
        .check_password("ana", "another long one")
        .await
        .is_ok());
    assert!(app
        .app
        .check_password("ana", "correct horse battery")
        .await
        .is_err());
    assert!(app
        .app
        .check_password("nobody", "another long one")
        .await
        .is_err());
    let (status, _) = app
        .call("GET", "/api/users/nobody", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // A key that belongs to ana acts as ana, until ana is disabled.
    let (status, body) = app
        .call(
            "POST",
            "/api/keys",
            Some(&app.admin),
            Some(json!({"role": "reviewer", "user": "ana"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(
        (body["key"]["user"].as_str(), body["key"]["name"].as_str()),
        (Some("ana"), Some("ana"))
    );
    let key = body["secret"].as_str().unwrap().to_string();
    let (status, _) = app
        .call(
            "POST",
            "/api/keys",
            Some(&app.admin),
            Some(json!({"role": "reviewer", "user": "ghost"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = app.call("GET", "/api/decisions", Some(&key), None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body) = app
        .call("POST", "/api/users/ana/disable", Some(&app.admin), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body["disabled_at"].is_string());
    assert!(app
        .app
        .check_password("ana", "another long one")
        .await
        .is_err());
    let (status, _) = app.call("GET", "/api/decisions", Some(&key), None).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "a disabled person's key must stop working"
    );
}
