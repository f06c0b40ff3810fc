//! Email: a pending request mails its eligible reviewers a summary and a
//! one-time sign-in link that opens it in the console; escalations and
//! expiries go to the escalation group. Sent over SMTP with `lettre`.
//!
//! The link only signs in: opening it shows a button (mail scanners follow
//! links), and approving needs the console's own form.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use gatehouse_app::notice::Links;
use gatehouse_app::outbox::{Channel, OutboxEvent, Owed, Sent};
use gatehouse_app::{App, DomainEvent, Resolution};
use gatehouse_core::{Decision, Role};
use lettre::message::{header::ContentType, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::{json, Value};

use crate::settings::{GroupSettings, SmtpSettings};

pub struct EmailChannel {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    groups: BTreeMap<String, GroupSettings>,
    link_ttl: Duration,
    public_url: String,
}

impl EmailChannel {
    pub fn new(
        settings: &SmtpSettings,
        groups: &BTreeMap<String, GroupSettings>,
        public_url: Option<&str>,
        timeout: Duration,
    ) -> Result<EmailChannel, String> {
        let public_url = public_url
            .ok_or("[smtp] needs public_url: mails link to the console")?
            .trim_end_matches('/')
            .to_string();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(settings.url.expose())
            .map_err(|e| format!("[smtp] url: {e}"))?
            .timeout(Some(timeout));
        if let Some(user) = &settings.username {
            let password = settings
                .password
                .as_ref()
                .map(|p| p.expose().to_string())
                .unwrap_or_default();
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        let from = settings
            .from
            .parse::<Mailbox>()
            .map_err(|e| format!("[smtp] from {:?}: {e}", settings.from))?;
        Ok(EmailChannel {
            transport: builder.build(),
            from,
            groups: groups.clone(),
            link_ttl: settings.link_ttl.0,
            public_url,
        })
    }

    /// Who to mail for `groups` (empty: any reviewer): a group's own
    /// addresses if it has them, otherwise its active reviewers' own,
    /// never the requester's.
    async fn recipients(
        &self,
        app: &App,
        groups: &[String],
        requester: &str,
    ) -> Vec<(String, Option<String>)> {
        let mut out: Vec<(String, Option<String>)> = Vec::new();
        let mut push = |addr: String, user: Option<String>| {
            if !out.iter().any(|(a, _)| a.eq_ignore_ascii_case(&addr)) {
                out.push((addr, user));
            }
        };
        let users = app.store().list_users().await.unwrap_or_default();
        let members = |group: Option<&str>| {
            users
                .iter()
                .filter(|u| u.is_active() && u.role == Role::Reviewer && u.name != requester)
                .filter(move |u| group.is_none_or(|g| u.groups.iter().any(|x| x == g)))
                .filter_map(|u| u.email.clone().map(|e| (e, Some(u.name.clone()))))
                .collect::<Vec<_>>()
        };
        if groups.is_empty() {
            for (a, u) in members(None) {
                push(a, u);
            }
        }
        for g in groups {
            match self.groups.get(g).filter(|s| !s.emails.is_empty()) {
                Some(s) => s.emails.iter().for_each(|a| push(a.clone(), None)),
                None => members(Some(g)).into_iter().for_each(|(a, u)| push(a, u)),
            }
        }
        out
    }
}

#[async_trait]
impl Channel for EmailChannel {
    fn name(&self) -> &'static str {
        "email"
    }

    async fn wants(&self, _app: &App, event_type: &str) -> bool {
        matches!(
            event_type,
            "decision.pending_review" | "decision.escalated" | "decision.resolved"
        )
    }

    async fn owed(&self, app: &App, ev: &OutboxEvent<'_>) -> Vec<Owed> {
        let rule = ev.decision.rule();
        let (kind, groups): (&str, Vec<String>) = match ev.event {
            DomainEvent::ReviewRequested { .. } => (
                "review",
                rule.requirements
                    .iter()
                    .flat_map(|r| r.groups.clone())
                    .collect(),
            ),
            DomainEvent::DecisionEscalated { group, .. } => ("escalated", vec![group.clone()]),
            DomainEvent::DecisionResolved {
                resolution: Resolution::Expired,
                ..
            } => (
                "expired",
                rule.requirements
                    .iter()
                    .filter_map(|r| r.escalate_to.clone())
                    .collect(),
            ),
            _ => return Vec::new(),
        };
        // An expiry without an escalation group has no one to tell.
        if kind == "expired" && groups.is_empty() {
            return Vec::new();
        }
        self.recipients(app, &groups, &rule.requester)
            .await
            .into_iter()
            .map(|(address, user)| Owed {
                target: address,
                payload: json!({"kind": kind, "user": user, "groups": groups}).to_string(),
            })
            .collect()
    }

    async fn send(&self, app: &App, d: &gatehouse_store::outbox::Delivery) -> Sent {
        let failed = |error: String, permanent: bool| Sent::Failed {
            code: None,
            error,
            permanent,
        };
        let decision = match app.store().get_decision(&d.new.decision_id).await {
            Ok(Some(decision)) => decision,
            Ok(None) => return failed("the decision is gone".into(), true),
            Err(e) => return failed(e.to_string(), false),
        };
        let what: Value = serde_json::from_str(&d.new.payload).unwrap_or_default();
        let kind = what["kind"].as_str().unwrap_or("review");
        let links = Links::new(Some(&self.public_url), &decision.id);
        // A person gets a link that signs them in; a list address the page.
        let link = match what["user"].as_str() {
            Some(user) if kind != "expired" => {
                match app
                    .create_sign_in_link(user, &decision.id, self.link_ttl)
                    .await
                {
                    Ok(token) => format!("{}/console/link/{token}", self.public_url),
                    Err(e) => return failed(e.to_string(), false),
                }
            }
            _ => links.console.clone(),
        };
        let Ok(to) = d.new.target.parse::<Mailbox>() else {
            return failed(format!("{:?} is not an email address", d.new.target), true);
        };
        let (subject, plain, html) = compose(&decision, kind, &link, self.link_ttl);
        let message = Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .multipart(
                MultiPart::alternative()
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_PLAIN)
                            .body(plain),
                    )
                    .singlepart(
                        SinglePart::builder()
                            .header(ContentType::TEXT_HTML)
                            .body(html),
                    ),
            );
        let message = match message {
            Ok(m) => m,
            Err(e) => return failed(format!("cannot build the mail: {e}"), true),
        };
        match self.transport.send(message).await {
            Ok(resp) => Sent::Delivered {
                code: Some(u16::from(resp.code())),
            },
            Err(e) => Sent::Failed {
                code: e.status().map(u16::from),
                error: e.to_string(),
                permanent: e.is_permanent(),
            },
        }
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Subject, plain text and HTML of a mail about a decision.
fn compose(d: &Decision, kind: &str, link: &str, ttl: Duration) -> (String, String, String) {
    let r = &d.request;
    let (subject, lead) = match kind {
        "escalated" => (
            format!("Escalated: {} for {} needs a review", r.action, r.subject),
            "This request has waited too long and is now escalated to you.",
        ),
        "expired" => (
            format!(
                "Expired: {} for {} was not reviewed in time",
                r.action, r.subject
            ),
            "This request expired without enough approvals; nothing was done.",
        ),
        _ => (
            format!("Approval needed: {} for {}", r.action, r.subject),
            "A request is waiting for your review.",
        ),
    };
    let mut facts = vec![
        ("Workflow", r.agent.clone()),
        ("Tool", r.action.clone()),
        ("Subject", r.subject.clone()),
        ("Risk", r.risk.as_str().to_string()),
    ];
    if let Some(deadline) = d.deadline {
        facts.push(("Deadline", gatehouse_core::decision::rfc3339(deadline)));
    }
    for (k, v) in r.payload.iter().take(8) {
        let shown = match v {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        facts.push((
            "Field",
            format!("{k}: {}", shown.chars().take(200).collect::<String>()),
        ));
    }
    let reasons: Vec<&str> = d.reasons.iter().map(|x| x.message.as_str()).collect();
    let hours = ttl.as_secs().div_ceil(3600);
    let action = if kind == "expired" {
        "Open the request"
    } else {
        "Review it in the console"
    };
    let mut plain = format!("{lead}\n\n");
    for (k, v) in &facts {
        plain.push_str(&format!("{k}: {v}\n"));
    }
    for s in &r.summary {
        plain.push_str(&format!("- {s}\n"));
    }
    if !reasons.is_empty() {
        plain.push_str(&format!("\nWhy: {}\n", reasons.join("; ")));
    }
    plain.push_str(&format!(
        "\n{action}: {link}\n\nThe link works once and for {hours} h. Opening it approves nothing.\n"
    ));
    let rows: String = facts
        .iter()
        .map(|(k, v)| {
            format!(
                "<tr><th align=\"left\">{}</th><td>{}</td></tr>",
                escape(k),
                escape(v)
            )
        })
        .collect();
    let summary: String = r
        .summary
        .iter()
        .map(|s| format!("<li>{}</li>", escape(s)))
        .collect();
    let html = format!(
        "<!doctype html><html><body><p>{}</p><table>{rows}</table><ul>{summary}</ul><p>{}</p>\
         <p><a href=\"{}\">{}</a></p><p><small>The link works once and for {hours} h. Opening it approves nothing.</small></p></body></html>",
        escape(lead),
        escape(&reasons.join("; ")),
        escape(link),
        escape(action),
    );
    (subject, plain, html)
}
