//! An attacker with write access to the database, but not to the signing
//! keys, edits rows while the server runs. The server must never act on a
//! forged state: it refuses and flags; `log verify` names the rows.

use serde_json::{json, Value};

use crate::*;

/// Runs one SQL statement against the server's database.
type Sql<'a> = &'a dyn Fn(&str);

struct World {
    url: String,
    agent: String,
    reviewer: String,
}

impl World {
    fn request(&self, risk: &str) -> String {
        let mut body = deploy_body();
        body["risk_level"] = json!(risk);
        let (code, d) = call(
            "POST",
            &format!("{}/api/agent/tasks/t/requests", self.url),
            Some(&self.agent),
            Some(body),
        );
        assert_eq!(code, 201, "{d}");
        d["id"].as_str().unwrap().to_string()
    }

    fn review(&self, id: &str, decision: &str) {
        let (code, body) = call(
            "POST",
            &format!("{}/api/gate/requests/{id}/review", self.url),
            Some(&self.reviewer),
            Some(json!({"decision": decision, "comment": "checked"})),
        );
        assert_eq!(code, 200, "{body}");
    }

    /// An approved high-risk request, its token not yet fetched.
    fn approved(&self) -> String {
        let id = self.request("high");
        self.review(&id, "approve");
        id
    }

    /// Runs an allowed request to the end: redeem, receipt, outcome.
    fn executed(&self) -> String {
        let id = self.request("low");
        let token = self.read(&id).1["approval_token"]
            .as_str()
            .unwrap()
            .to_string();
        let (code, redeemed) = self.redeem(&token);
        assert_eq!(code, 200, "{redeemed}");
        let body = deploy_body();
        let post = |what: &str, body: Value| {
            let url = format!("{}/api/decision/{id}/{what}", self.url);
            let (code, answer) = call("POST", &url, Some(&self.agent), Some(body));
            assert_eq!(code, 201, "{answer}");
        };
        post(
            "executions",
            json!({"target_system": "github", "target_object": "prod", "mutation": "deploy",
                   "executor": "worker", "token_jti": redeemed["jti"], "action": body["tool_name"],
                   "subject": body["subject"], "payload": body["payload"]}),
        );
        post(
            "outcomes",
            json!({"status": "succeeded", "action_taken": "deployed"}),
        );
        id
    }

    fn read(&self, id: &str) -> (u16, Value) {
        call(
            "GET",
            &format!("{}/api/gate/requests/{id}", self.url),
            Some(&self.agent),
            None,
        )
    }

    fn redeem(&self, token: &str) -> (u16, Value) {
        let body = deploy_body();
        let action = json!({"tool_name": body["tool_name"], "subject": body["subject"], "payload": body["payload"]});
        call(
            "POST",
            &format!("{}/api/tokens/redeem", self.url),
            Some(&self.agent),
            Some(json!({"token": token, "action": action})),
        )
    }
}

/// The refusal a forged approval gets: 409 `evidence_mismatch`, never a
/// token, and the decision flagged in the log.
fn assert_refused(w: &World, id: &str, what: &str) {
    for _ in 0..2 {
        let (code, body) = w.read(id);
        assert_eq!(code, 409, "{what}: {body}");
        assert_eq!(body["error"]["code"], "evidence_mismatch", "{what}");
        assert!(body.get("approval_token").is_none(), "{what}");
    }
    let (code, packet) = call(
        "GET",
        &format!("{}/api/decision/{id}/packet", w.url),
        Some(&w.reviewer),
        None,
    );
    assert_eq!(code, 200, "the evidence stays readable: {packet}");
    let flags = packet["audit_chain"]["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            let leaf = base64_decode(e["leaf"].as_str().unwrap());
            String::from_utf8_lossy(&leaf).contains("\"type\":\"flag\"")
        })
        .count();
    assert_eq!(flags, 1, "{what}: flagged once, however often it is read");
}

fn scenario(storage: &[&str], sql: Sql) {
    let agent = create_key(storage, "agent");
    let reviewer = create_key(storage, "reviewer");
    let server = Server::start(storage, &["--review-timeout", "2s"]);
    let w = World {
        url: server.url.clone(),
        agent,
        reviewer,
    };
    let now_ms = "1700000000000";

    // pending → approved
    let pending = w.request("high");
    sql(&format!(
        "UPDATE decisions SET status = 'approved', resolved_at_ms = {now_ms} WHERE id = '{pending}'"
    ));
    assert_refused(&w, &pending, "pending → approved");

    // rejected → approved
    let rejected = w.request("high");
    w.review(&rejected, "reject");
    sql(&format!(
        "UPDATE decisions SET status = 'approved' WHERE id = '{rejected}'"
    ));
    assert_refused(&w, &rejected, "rejected → approved");

    // expired → approved
    let expired = w.request("high");
    std::thread::sleep(std::time::Duration::from_millis(3200));
    assert_eq!(w.read(&expired).1["status"], "expired");
    sql(&format!(
        "UPDATE decisions SET status = 'approved' WHERE id = '{expired}'"
    ));
    assert_refused(&w, &expired, "expired → approved");

    // A deleted redemption does not make a token usable again.
    let allowed = w.request("low");
    let (_, d) = w.read(&allowed);
    let token = d["approval_token"].as_str().unwrap().to_string();
    assert_eq!(w.redeem(&token).0, 200);
    sql(&format!(
        "DELETE FROM token_redemptions WHERE decision_id = '{allowed}'"
    ));
    let (code, body) = w.redeem(&token);
    assert_eq!(code, 409, "{body}");
    assert_eq!(body["error"]["code"], "token_already_redeemed");

    // Review rows edited or deleted: the approval they claim is refused.
    let flipped = w.approved();
    sql(&format!(
        "UPDATE decisions SET review = replace(review, '\"approve\"', '\"reject\"'), status = 'rejected' WHERE id = '{flipped}'"
    ));
    let reworded = w.approved();
    sql(&format!(
        "UPDATE decisions SET review = replace(review, 'checked', 'not checked') WHERE id = '{reworded}'"
    ));
    assert_refused(&w, &reworded, "edited comment");
    let unreviewed = w.approved();
    sql(&format!(
        "UPDATE decisions SET review = NULL WHERE id = '{unreviewed}'"
    ));
    assert_refused(&w, &unreviewed, "deleted review");

    // A token's stored claims (kept unsigned) replaced by another
    // decision's: the server signs stored claims only when they match
    // their log entry.
    let swapped = w.request("low");
    let donor = w.request("low");
    sql(&format!(
        "UPDATE approval_tokens SET token = (SELECT token FROM approval_tokens WHERE decision_id = '{donor}') WHERE decision_id = '{swapped}'"
    ));
    assert_refused(&w, &swapped, "token claims swapped");

    // Receipts and outcomes edited or deleted.
    let executed = w.executed();
    sql(&format!(
        "UPDATE executions SET body = replace(body, '\"prod\"', '\"staging\"') WHERE decision_id = '{executed}'"
    ));
    sql(&format!(
        "DELETE FROM outcomes WHERE decision_id = '{executed}'"
    ));

    // The server's own check names the rows too.
    let (code, verdict) = call(
        "GET",
        &format!("{}/api/decision/{executed}/verify", w.url),
        Some(&w.reviewer),
        None,
    );
    assert_eq!(code, 200, "{verdict}");
    assert_eq!(verdict["valid"], false, "{verdict}");
    let rows = verdict["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "stored_rows")
        .unwrap();
    assert_eq!(rows["ok"], false, "{verdict}");
    assert!(
        rows["detail"]
            .as_str()
            .unwrap()
            .contains("is missing from its table"),
        "{verdict}"
    );

    // `log verify` names every forged row, while the server runs.
    let (code, out) = log_verify(storage, &[]);
    assert_eq!(code, 1, "{out}");
    for (id, expected) in [
        (
            &pending,
            "the row's status is approved but its log entries say pending_review",
        ),
        (
            &rejected,
            "the row's status is approved but its log entries say rejected",
        ),
        (
            &expired,
            "the row's status is approved but its log entries say expired",
        ),
        (&allowed, "is missing from the redemptions table"),
        (
            &flipped,
            "the row's status is rejected but its log entries say approved",
        ),
        (&flipped, "review differs from log entry"),
        (&reworded, "in: comment"),
        (&unreviewed, "the review logged at entry"),
        (&swapped, "the stored approval token differs from log entry"),
        (&executed, "was changed after log entry"),
        (&executed, "is missing from its table"),
    ] {
        assert!(
            out.contains(&format!("decision {id}: "))
                && out
                    .lines()
                    .any(|l| l.contains(id.as_str()) && l.contains(expected)),
            "log verify must name decision {id} ({expected}): {out}"
        );
    }

    // An honest decision next to them still works end to end.
    let fine = w.request("high");
    w.review(&fine, "approve");
    let (code, body) = w.read(&fine);
    assert_eq!(
        (code, body["may_proceed"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(w.redeem(body["approval_token"].as_str().unwrap()).0, 200);
}

#[test]
fn forged_approvals_are_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().to_str().unwrap().to_string();
    let db = dir.path().join("gatehouse.db");
    let sql = move |stmt: &str| {
        rusqlite::Connection::open(&db)
            .unwrap()
            .execute_batch(stmt)
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    };
    scenario(&["--data", &data], &sql);
}

#[test]
fn forged_approvals_are_refused_on_postgres() {
    let schema = fresh_schema();
    let dir = tempfile::tempdir().unwrap();
    let flags = postgres_flags(&schema, dir.path());
    let storage: Vec<&str> = flags.iter().map(String::as_str).collect();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pool = rt
        .block_on(sqlx::PgPool::connect_with(schema.options()))
        .unwrap();
    let sql = |stmt: &str| {
        rt.block_on(sqlx::query(stmt).execute(&pool))
            .unwrap_or_else(|e| panic!("{stmt}: {e}"));
    };
    scenario(&storage, &sql);
}
