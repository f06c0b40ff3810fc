//! Slack approvals, outgoing half: a Block Kit message per routed group's
//! channel when a request waits for review (chat.postMessage), updated in
//! place (chat.update) as reviews arrive and when the decision is
//! resolved, wherever that happened. The incoming half, the buttons, is
//! `slack_http.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_app::notice::{Links, REVIEW_RECORDED};
use gatehouse_app::outbox::{Channel, OutboxEvent, Owed, Sent};
use gatehouse_app::App;
use gatehouse_core::{Decision, ReviewChoice, Status};
use gatehouse_store::outbox::Delivery;
use serde_json::{json, Value};

use crate::settings::{GroupSettings, SlackSettings};
use crate::webhooks::describe;

/// Action ids of the message's buttons and the reject modal's callback.
pub const APPROVE: &str = "gatehouse_approve";
pub const REJECT: &str = "gatehouse_reject";
pub const CONSOLE: &str = "gatehouse_open";
pub const REASON_BLOCK: &str = "reason";

/// A failed Web API call.
#[derive(Debug)]
pub struct ApiFailure {
    pub code: Option<u16>,
    pub error: String,
}

/// Slack's Web API, at the configured base.
pub struct SlackApi {
    client: reqwest::Client,
    base: String,
    token: String,
}

impl SlackApi {
    /// Calls a Web API method with a JSON body; Slack answers 200 with
    /// `ok: false` for most failures.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, ApiFailure> {
        let url = format!("{}/{method}", self.base.trim_end_matches('/'));
        let resp = self
            .client
            .post(url)
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .map_err(|e| ApiFailure {
                code: None,
                error: describe(&e),
            })?;
        let code = resp.status().as_u16();
        if !resp.status().is_success() {
            return Err(ApiFailure {
                code: Some(code),
                error: format!("Slack answered {}", resp.status()),
            });
        }
        let answer: Value = resp.json().await.map_err(|e| ApiFailure {
            code: Some(code),
            error: format!("unreadable answer: {e}"),
        })?;
        if answer["ok"] == true {
            Ok(answer)
        } else {
            Err(ApiFailure {
                code: Some(code),
                error: format!("{method}: {}", answer["error"].as_str().unwrap_or("not ok")),
            })
        }
    }
}

/// What the Slack channel and the interactions endpoint share.
pub struct Slack {
    pub api: SlackApi,
    pub signing_secret: Vec<u8>,
    groups: BTreeMap<String, GroupSettings>,
}

impl Slack {
    pub fn new(
        settings: &SlackSettings,
        groups: &BTreeMap<String, GroupSettings>,
        client: reqwest::Client,
    ) -> Slack {
        Slack {
            api: SlackApi {
                client,
                base: settings.api_base.0.to_string(),
                token: settings.bot_token.expose().to_string(),
            },
            signing_secret: settings.signing_secret.expose().as_bytes().to_vec(),
            groups: groups.clone(),
        }
    }

    /// The channels of the groups a decision routes to, escalation groups
    /// included, without repeats.
    fn channels(&self, d: &Decision, with_escalation: bool) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for r in d.rule().requirements {
            let escalation = r.escalate_to.into_iter().filter(|_| with_escalation);
            for g in r.groups.into_iter().chain(escalation) {
                if let Some(c) = self.groups.get(&g).and_then(|s| s.slack_channel.clone()) {
                    if !out.contains(&c) {
                        out.push(c);
                    }
                }
            }
        }
        out
    }
}

/// The channel as the outbox sees it.
pub struct SlackChannel(pub Arc<Slack>);

fn ref_key(channel: &str) -> String {
    format!("slack:{channel}")
}

#[async_trait]
impl Channel for SlackChannel {
    fn name(&self) -> &'static str {
        "slack"
    }

    async fn wants(&self, _app: &App, event_type: &str) -> bool {
        matches!(
            event_type,
            "decision.pending_review" | "decision.escalated" | "decision.resolved"
        ) || event_type == REVIEW_RECORDED
    }

    async fn owed(&self, _app: &App, ev: &OutboxEvent<'_>) -> Vec<Owed> {
        let (op, channels) = match ev.event_type {
            "decision.pending_review" => ("post", self.0.channels(ev.decision, false)),
            "decision.escalated" => {
                let group = match ev.event {
                    gatehouse_app::DomainEvent::DecisionEscalated { group, .. } => group.clone(),
                    _ => return Vec::new(),
                };
                let channel = self
                    .0
                    .groups
                    .get(&group)
                    .and_then(|g| g.slack_channel.clone());
                ("post", channel.into_iter().collect())
            }
            _ => ("update", self.0.channels(ev.decision, true)),
        };
        channels
            .into_iter()
            .map(|c| Owed {
                target: c,
                payload: json!({ "op": op }).to_string(),
            })
            .collect()
    }

    async fn send(&self, app: &App, d: &Delivery) -> Sent {
        let decision = match app.store().get_decision(&d.new.decision_id).await {
            Ok(Some(decision)) => decision,
            Ok(None) => return failed(None, "the decision is gone".into(), true),
            Err(e) => return failed(None, e.to_string(), false),
        };
        let channel = &d.new.target;
        let key = ref_key(channel);
        let posted = match app.store().notification_ref(&decision.id, &key).await {
            Ok(ts) => ts,
            Err(e) => return failed(None, e.to_string(), false),
        };
        let links = Links::new(app.config().public_url.as_deref(), &decision.id);
        let mut body = message(&decision, &links);
        body["channel"] = json!(channel);
        let op: Value = serde_json::from_str(&d.new.payload).unwrap_or_default();
        let result = match (op["op"].as_str(), posted) {
            // Posted already (an escalation to a channel that has it, or
            // a retry after the ts was stored): update instead.
            (_, Some(ts)) => {
                body["ts"] = json!(ts);
                self.0.api.call("chat.update", &body).await
            }
            (Some("post"), None) => match self.0.api.call("chat.postMessage", &body).await {
                Ok(answer) => {
                    let ts = answer["ts"].as_str().unwrap_or_default().to_string();
                    if let Err(e) = app
                        .store()
                        .put_notification_ref(&decision.id, &key, &ts)
                        .await
                    {
                        // Posted but not remembered: updates will find no
                        // message. Say so rather than post twice.
                        tracing::warn!(error = %e, "cannot remember a Slack message");
                    }
                    Ok(answer)
                }
                Err(e) => Err(e),
            },
            // Nothing was posted to this channel, so there is nothing to update.
            _ => return Sent::Delivered { code: None },
        };
        match result {
            Ok(_) => Sent::Delivered { code: Some(200) },
            Err(e) => {
                let permanent = [
                    "channel_not_found",
                    "not_in_channel",
                    "invalid_auth",
                    "account_inactive",
                    "invalid_blocks",
                ]
                .iter()
                .any(|p| e.error.ends_with(p));
                failed(e.code, e.error, permanent)
            }
        }
    }
}

fn failed(code: Option<u16>, error: String, permanent: bool) -> Sent {
    Sent::Failed {
        code,
        error,
        permanent,
    }
}

fn text(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if s.chars().count() > max {
        out.push('…');
    }
    // Slack's mrkdwn treats these three as markup.
    out.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Who approved and how far each requirement is.
fn progress(d: &Decision) -> String {
    let rule = d.rule();
    let tally = d.tally();
    rule.requirements
        .iter()
        .zip(&tally.requirements)
        .map(|(r, t)| {
            let who = r.eligible_label();
            format!(
                "{}/{} from {who}",
                t.approvers.len().min(r.quorum as usize),
                r.quorum
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The message for a decision as it stands: the request, its reasons,
/// deadline and quorum progress, and the buttons while it waits (or who
/// decided once it is resolved).
pub fn message(d: &Decision, links: &Links) -> Value {
    let r = &d.request;
    let mut fields = vec![
        json!({"type": "mrkdwn", "text": format!("*Workflow*\n{}", text(&r.agent, 200))}),
        json!({"type": "mrkdwn", "text": format!("*Tool*\n{}", text(&r.action, 200))}),
        json!({"type": "mrkdwn", "text": format!("*Subject*\n{}", text(&r.subject, 200))}),
        json!({"type": "mrkdwn", "text": format!("*Risk*\n{}", r.risk.as_str())}),
        json!({"type": "mrkdwn", "text": format!("*Approvals*\n{}", text(&progress(d), 300))}),
    ];
    if let Some(deadline) = d.deadline {
        fields.push(json!({"type": "mrkdwn", "text": format!("*Deadline*\n<!date^{}^{{date_short_pretty}} {{time}}|{}>", deadline.unix_timestamp(), gatehouse_core::decision::rfc3339(deadline))}));
    }
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": text(&format!("Approval needed: {}", r.action), 140)}}),
        json!({"type": "section", "fields": fields}),
    ];
    let mut facts: Vec<String> = r
        .summary
        .iter()
        .take(10)
        .map(|s| format!("• {}", text(s, 300)))
        .collect();
    facts.extend(r.payload.iter().take(8).map(|(k, v)| {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        format!("`{}`: {}", text(k, 60), text(&shown, 200))
    }));
    if !facts.is_empty() {
        blocks
            .push(json!({"type": "section", "text": {"type": "mrkdwn", "text": facts.join("\n")}}));
    }
    let reasons: Vec<String> = d
        .reasons
        .iter()
        .take(5)
        .map(|x| text(&x.message, 200))
        .collect();
    if !reasons.is_empty() {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": reasons.join(" · ")}]}));
    }
    let open = json!({"type": "button", "action_id": CONSOLE, "text": {"type": "plain_text", "text": "Open in console"}, "url": links.console});
    if d.status == Status::PendingReview {
        blocks.push(json!({"type": "actions", "block_id": "gatehouse", "elements": [
            {"type": "button", "action_id": APPROVE, "style": "primary", "value": d.id, "text": {"type": "plain_text", "text": "Approve"}},
            {"type": "button", "action_id": REJECT, "style": "danger", "value": d.id, "text": {"type": "plain_text", "text": "Reject"}},
            open,
        ]}));
    } else {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": outcome(d)}, "accessory": open}));
    }
    json!({
        "text": format!("{} for {}: {} ({})", r.action, r.subject, d.status.as_str(), progress(d)),
        "blocks": blocks,
    })
}

/// The resolved message's verdict line: the result and who decided.
fn outcome(d: &Decision) -> String {
    let by = |choice: ReviewChoice| -> Vec<String> {
        d.reviews
            .iter()
            .filter(|r| r.decision == choice)
            .map(|r| {
                r.reviewer_user
                    .clone()
                    .or(r.reviewer_name.clone())
                    .unwrap_or_else(|| r.reviewer_key_id.clone())
            })
            .map(|n| text(&n, 64))
            .collect()
    };
    match d.status {
        Status::Approved => format!(
            ":white_check_mark: *Approved* by {}",
            by(ReviewChoice::Approve).join(", ")
        ),
        Status::Rejected => {
            let reason = d
                .review
                .as_ref()
                .and_then(|r| r.comment.as_deref())
                .map(|c| format!(": {}", text(c, 300)))
                .unwrap_or_default();
            format!(
                ":no_entry: *Rejected* by {}{reason}",
                by(ReviewChoice::Reject).join(", ")
            )
        }
        Status::Expired => ":hourglass: *Expired* without enough approvals".to_string(),
        other => format!("*{}*", other.as_str()),
    }
}
