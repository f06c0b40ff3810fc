mod common;

use axum::http::StatusCode;
use base64::Engine as _;
use common::{app, seed_gate_body};
use gatehouse_log::checkpoint;
use gatehouse_log::entry::LogEntry;
use gatehouse_log::proof::{leaf_hash, verify_consistency, verify_inclusion};
use gatehouse_log::Hash;
use serde_json::{json, Value};

fn hash(v: &Value) -> Hash {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap())
        .unwrap();
    Hash(bytes.try_into().unwrap())
}

async fn text(app: &common::TestApp, path: &str) -> (StatusCode, String) {
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .uri(path)
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.router.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8(bytes.to_vec()).unwrap())
}

#[tokio::test]
async fn checkpoint_and_proofs_verify_with_the_published_key() {
    let app = app().await;
    let (status, key) = text(&app, "/api/log/key").await;
    assert_eq!(status, StatusCode::OK);

    let (_, first) = app
        .call(
            "POST",
            "/api/agent/tasks/t/requests",
            Some(&app.agent),
            Some(seed_gate_body()),
        )
        .await;
    let (_, old_note) = text(&app, "/api/log/checkpoint").await;
    let old = checkpoint::verify(&old_note, &key).expect("checkpoint signed by the published key");

    let (_, record) = app
        .call(
            "POST",
            "/api/decide",
            Some(&app.agent),
            Some(json!({"question": "q", "context": {"workflow": "w", "requested_action": "a", "risk": "low"}})),
        )
        .await;
    // The record carries its log position and a checkpoint that covers it.
    let index = record["log_index"].as_u64().unwrap();
    let note = record["checkpoint"].as_str().unwrap();
    let cp = checkpoint::verify(note, &key).unwrap();
    assert!(cp.size > index);

    let (status, proof) = app
        .call(
            "GET",
            &format!("/api/log/proof/inclusion?index={index}&size={}", cp.size),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{proof}");
    let leaf = base64::engine::general_purpose::STANDARD
        .decode(proof["leaf"].as_str().unwrap())
        .unwrap();
    let stored = app
        .store
        .get_decision(record["decision_id"].as_str().unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        leaf,
        LogEntry::decision(&stored).to_bytes(),
        "the leaf is the decision's entry"
    );
    assert_eq!(
        hex::encode(leaf_hash(&leaf).0),
        record["receipt_hash"].as_str().unwrap()
    );
    let path: Vec<Hash> = proof["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    verify_inclusion(&path, cp.size, cp.root, index, leaf_hash(&leaf)).expect("inclusion proof");

    let (status, consistency) = app
        .call(
            "GET",
            &format!(
                "/api/log/proof/consistency?from={}&to={}",
                old.size, cp.size
            ),
            Some(&app.auditor),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let path: Vec<Hash> = consistency["proof"]
        .as_array()
        .unwrap()
        .iter()
        .map(hash)
        .collect();
    verify_consistency(&path, old.size, old.root, cp.size, cp.root).expect("the log only grew");
    assert!(first["log_index"].as_u64().unwrap() < old.size);
}

#[tokio::test]
async fn proof_parameters_are_checked() {
    let app = app().await;
    let size = app.store.log_size().await.unwrap();
    for path in [
        format!("/api/log/proof/inclusion?index={size}&size={size}"),
        format!("/api/log/proof/inclusion?index=0&size={}", size + 1),
        "/api/log/proof/inclusion?index=x&size=1".to_string(),
        "/api/log/proof/inclusion?size=1".to_string(),
        format!("/api/log/proof/consistency?from=0&to={size}"),
        format!("/api/log/proof/consistency?from={size}&to={}", size + 5),
    ] {
        let (status, body) = app.call("GET", &path, Some(&app.auditor), None).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        assert_eq!(body["error"]["code"], "bad_request");
    }
    let (status, _) = app
        .call("GET", "/api/log/proof/inclusion?index=0&size=1", None, None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
