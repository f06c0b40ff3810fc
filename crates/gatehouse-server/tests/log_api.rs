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

/// Leaves name a decision's id, the key that asked, its verdict and the
/// action's hash: an agent reads only those about its own decisions.
#[tokio::test]
async fn agents_read_only_the_log_entries_about_their_own_decisions() {
    let app = app().await;
    let mut low = seed_gate_body();
    low["risk_level"] = json!("low");
    let mut indexes = Vec::new();
    for agent in [&app.agent, &app.agent2] {
        let (status, d) = app
            .call(
                "POST",
                "/api/agent/tasks/t/requests",
                Some(agent),
                Some(low.clone()),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED, "{d}");
        let entries = app
            .store
            .log_entries_for(d["id"].as_str().unwrap())
            .await
            .unwrap();
        // The decision's own entry and the token entry chained after it.
        assert_eq!(entries.len(), 2);
        indexes.push(entries.iter().map(|(i, _)| *i).collect::<Vec<_>>());
    }
    let (_, note) = text(&app, "/api/log/checkpoint").await;
    let size = checkpoint::verify(&note, app.store.log_verifier_key())
        .unwrap()
        .size;
    let read = |key: String, index: u64| {
        let app = &app;
        async move {
            app.call(
                "GET",
                &format!("/api/log/proof/inclusion?index={index}&size={size}"),
                Some(&key),
                None,
            )
            .await
        }
    };
    for &index in &indexes[0] {
        assert_eq!(read(app.agent.clone(), index).await.0, StatusCode::OK);
        let (status, body) = read(app.agent2.clone(), index).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        assert_eq!(body["error"]["code"], "forbidden");
        assert_eq!(
            read(app.executor.clone(), index).await.0,
            StatusCode::FORBIDDEN
        );
        for key in [&app.reviewer, &app.auditor, &app.admin] {
            assert_eq!(read(key.clone(), index).await.0, StatusCode::OK);
        }
    }
    for &index in &indexes[1] {
        assert_eq!(read(app.agent2.clone(), index).await.0, StatusCode::OK);
        assert_eq!(
            read(app.agent.clone(), index).await.0,
            StatusCode::FORBIDDEN
        );
    }
    // Entries about no decision (policy versions, keys) are not an agent's.
    assert_eq!(read(app.agent.clone(), 0).await.0, StatusCode::FORBIDDEN);
    assert_eq!(read(app.auditor.clone(), 0).await.0, StatusCode::OK);
}
