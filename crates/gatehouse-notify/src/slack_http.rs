//! Slack approvals, incoming half: `POST /integrations/slack/interactions`.
//! A click is verified (Slack's signature, a timestamp within five
//! minutes), the Slack user mapped to a person, and the review made with
//! exactly the rules of the API and the console (`App::review`), durably,
//! before Slack gets its answer; the message itself is updated by the
//! outbox. Reject opens a modal that asks for the reason.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use gatehouse_app::sessions::caller_of;
use gatehouse_app::App;
use gatehouse_core::ReviewChoice;
use serde_json::{json, Value};

use crate::signing::{verify_slack, SlackRefusal};
use crate::slack::{Slack, APPROVE, REASON_BLOCK, REJECT};

/// Slack's interaction payloads are small; anything larger is not Slack.
const MAX_BODY: usize = 64 * 1024;

#[derive(Clone)]
struct Shared {
    app: Arc<App>,
    slack: Arc<Slack>,
}

/// The interactions endpoint, to merge into the server's routes.
pub fn router(app: Arc<App>, slack: Arc<Slack>) -> Router {
    Router::new()
        .route("/integrations/slack/interactions", post(interactions))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY))
        .with_state(Shared { app, slack })
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

async fn interactions(State(s): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Err(refusal) = verify_slack(
        &s.slack.signing_secret,
        header("x-slack-request-timestamp"),
        header("x-slack-signature"),
        &body,
        now(),
    ) {
        let message = match refusal {
            SlackRefusal::Missing => "missing Slack signature headers",
            SlackRefusal::Stale => "the Slack request timestamp is not within five minutes",
            SlackRefusal::Mismatch => "the Slack signature does not match",
        };
        return error(StatusCode::UNAUTHORIZED, "unauthorized", message);
    }
    let Some(payload) = form_urlencoded::parse(&body)
        .find(|(k, _)| k == "payload")
        .and_then(|(_, v)| serde_json::from_str::<Value>(&v).ok())
    else {
        return error(
            StatusCode::BAD_REQUEST,
            "bad_request",
            "no interaction payload",
        );
    };
    match payload["type"].as_str() {
        Some("block_actions") => block_actions(&s, &payload).await,
        Some("view_submission") => view_submission(&s, &payload).await,
        // Other interactions (the console button's own click, modals
        // closed) need nothing from us.
        _ => StatusCode::OK.into_response(),
    }
}

/// The person behind the Slack user, or the explanation why there is none.
async fn person(s: &Shared, slack_user: &str) -> Result<gatehouse_app::users::User, String> {
    // An email is asked for only when the id is not linked.
    if let Ok(Some(user)) = s.app.person_for_slack(slack_user, None).await {
        return Ok(user);
    }
    let email = s
        .slack
        .api
        .call("users.info", &json!({ "user": slack_user }))
        .await
        .ok()
        .and_then(|a| a["user"]["profile"]["email"].as_str().map(str::to_string));
    match s.app.person_for_slack(slack_user, email.as_deref()).await {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err("Your Slack account is not linked to an active Gatehouse reviewer. Ask an admin to run `gatehouse users link-slack NAME YOUR_SLACK_ID`, or to give your Gatehouse user your Slack email address.".into()),
        Err(e) => Err(format!("Gatehouse could not look you up: {e}")),
    }
}

/// Tells one user, and only them, why their click did nothing.
fn explain(s: &Shared, payload: &Value, text: String) {
    let slack = s.slack.clone();
    let body = json!({
        "channel": payload["channel"]["id"],
        "user": payload["user"]["id"],
        "text": text,
    });
    // After the answer: Slack waits at most three seconds for it.
    tokio::spawn(async move {
        if let Err(e) = slack.api.call("chat.postEphemeral", &body).await {
            tracing::warn!(error = %e.error, "cannot explain a refused Slack click");
        }
    });
}

async fn block_actions(s: &Shared, payload: &Value) -> Response {
    let Some(action) = payload["actions"].get(0) else {
        return StatusCode::OK.into_response();
    };
    let decision = action["value"].as_str().unwrap_or_default().to_string();
    let slack_user = payload["user"]["id"].as_str().unwrap_or_default();
    match action["action_id"].as_str() {
        Some(APPROVE) => {
            let user = match person(s, slack_user).await {
                Ok(u) => u,
                Err(why) => {
                    explain(s, payload, why);
                    return StatusCode::OK.into_response();
                }
            };
            let caller = caller_of(&user);
            if let Err(e) = s
                .app
                .review(&caller, &decision, ReviewChoice::Approve, None, None)
                .await
            {
                explain(s, payload, format!("Your approval was not recorded: {e}"));
            }
            StatusCode::OK.into_response()
        }
        Some(REJECT) => {
            // Who may reject is checked when the reason is submitted; the
            // modal only asks for it.
            let view = json!({
                "trigger_id": payload["trigger_id"],
                "view": {
                    "type": "modal",
                    "callback_id": REJECT,
                    "private_metadata": json!({"decision": decision, "channel": payload["channel"]["id"]}).to_string(),
                    "title": {"type": "plain_text", "text": "Reject request"},
                    "submit": {"type": "plain_text", "text": "Reject"},
                    "close": {"type": "plain_text", "text": "Cancel"},
                    "blocks": [{
                        "type": "input",
                        "block_id": REASON_BLOCK,
                        "label": {"type": "plain_text", "text": "Why are you rejecting it?"},
                        "element": {"type": "plain_text_input", "action_id": REASON_BLOCK, "multiline": true, "max_length": 2000}
                    }]
                }
            });
            if let Err(e) = s.slack.api.call("views.open", &view).await {
                tracing::warn!(error = %e.error, "cannot open the Slack reject dialog");
            }
            StatusCode::OK.into_response()
        }
        _ => StatusCode::OK.into_response(),
    }
}

async fn view_submission(s: &Shared, payload: &Value) -> Response {
    let view = &payload["view"];
    if view["callback_id"] != REJECT {
        return StatusCode::OK.into_response();
    }
    let meta: Value = view["private_metadata"]
        .as_str()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let decision = meta["decision"].as_str().unwrap_or_default();
    let reason = view["state"]["values"][REASON_BLOCK][REASON_BLOCK]["value"]
        .as_str()
        .map(str::trim)
        .filter(|r| !r.is_empty());
    // Errors show under the reason field, in the modal still open.
    let refuse = |text: String| {
        Json(json!({"response_action": "errors", "errors": {REASON_BLOCK: text}})).into_response()
    };
    let Some(reason) = reason else {
        return refuse("Say why you are rejecting it.".into());
    };
    let user = match person(s, payload["user"]["id"].as_str().unwrap_or_default()).await {
        Ok(u) => u,
        Err(why) => return refuse(why),
    };
    match s
        .app
        .review(
            &caller_of(&user),
            decision,
            ReviewChoice::Reject,
            Some(reason.to_string()),
            None,
        )
        .await
    {
        Ok(_) => StatusCode::OK.into_response(),
        Err(e) => refuse(format!("Your rejection was not recorded: {e}")),
    }
}
