//! What a notification says: the event catalogue's names and the data
//! every channel (webhooks, callbacks, Slack, email) shows about a
//! decision.

use gatehouse_core::decision::Reason;
use gatehouse_core::{Decision, Status};
use serde::Serialize;

use crate::events::{DomainEvent, Resolution};

/// Every event type a subscription may name, in catalogue order.
pub const EVENT_TYPES: [&str; 7] = [
    "decision.created",
    "decision.pending_review",
    "decision.escalated",
    "decision.resolved",
    "token.redeemed",
    "execution.refused",
    "outcome.recorded",
];

/// Not in the catalogue: a review that did not resolve its decision yet.
/// Only channels that show quorum progress (Slack) act on it.
pub const REVIEW_RECORDED: &str = "review.recorded";

/// The catalogue name of a domain event; `None` for events no channel
/// acts on.
pub fn event_type(event: &DomainEvent) -> Option<&'static str> {
    Some(match event {
        DomainEvent::DecisionCreated { .. } => "decision.created",
        DomainEvent::ReviewRequested { .. } => "decision.pending_review",
        DomainEvent::DecisionEscalated { .. } => "decision.escalated",
        DomainEvent::DecisionResolved { .. } => "decision.resolved",
        DomainEvent::TokenRedeemed { .. } => "token.redeemed",
        DomainEvent::ExecutionRefused { .. } => "execution.refused",
        DomainEvent::OutcomeRecorded { .. } => "outcome.recorded",
        DomainEvent::ReviewRecorded { .. } => REVIEW_RECORDED,
        DomainEvent::ExecutionRecorded { .. } => return None,
    })
}

/// Links to a decision in the API and the console.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Links {
    pub api: String,
    pub console: String,
}

impl Links {
    /// Absolute with the configured public URL, otherwise paths.
    pub fn new(public_url: Option<&str>, decision_id: &str) -> Links {
        let base = public_url.unwrap_or("").trim_end_matches('/');
        Links {
            api: format!("{base}/api/decision/{decision_id}"),
            console: format!("{base}/console/decisions/{decision_id}"),
        }
    }
}

/// A webhook's or callback's `data`: the decision as it stood at the event.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NoticeData {
    pub id: String,
    /// The status the event left the decision in.
    pub status: Status,
    pub verdict: gatehouse_core::Verdict,
    pub workflow: String,
    pub tool: String,
    pub subject: String,
    pub risk: gatehouse_core::Risk,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub summary: Vec<String>,
    pub reasons: Vec<Reason>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
    pub links: Links,
    /// What the event adds: the resolution, the escalation group, the
    /// redeemed token's id, why an execution was refused, the outcome.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<gatehouse_core::execution::OutcomeStatus>,
    /// The log entry the event comes from.
    pub log_index: u64,
}

/// A Standard Webhooks body: `{type, timestamp, data}`.
#[derive(Debug, Clone, Serialize)]
pub struct Envelope<'a> {
    #[serde(rename = "type")]
    pub event_type: &'a str,
    pub timestamp: &'a str,
    pub data: &'a NoticeData,
}

fn rfc3339(t: time::OffsetDateTime) -> Option<String> {
    t.format(&time::format_description::well_known::Rfc3339)
        .ok()
}

impl NoticeData {
    pub fn new(
        decision: &Decision,
        event: &DomainEvent,
        log_index: u64,
        public_url: Option<&str>,
    ) -> NoticeData {
        let status = match event {
            DomainEvent::DecisionCreated { verdict, .. } => verdict.initial_status(),
            DomainEvent::ReviewRequested { .. } | DomainEvent::DecisionEscalated { .. } => {
                Status::PendingReview
            }
            DomainEvent::DecisionResolved { resolution, .. } => match resolution {
                Resolution::Approved => Status::Approved,
                Resolution::Rejected => Status::Rejected,
                Resolution::Expired => Status::Expired,
            },
            _ => decision.status,
        };
        let r = &decision.request;
        let mut data = NoticeData {
            id: decision.id.clone(),
            status,
            verdict: decision.verdict,
            workflow: r.agent.clone(),
            tool: r.action.clone(),
            subject: r.subject.clone(),
            risk: r.risk,
            summary: r.summary.clone(),
            reasons: decision.reasons.clone(),
            task_id: r.task_id.clone(),
            deadline: decision.deadline.and_then(rfc3339),
            links: Links::new(public_url, &decision.id),
            resolution: None,
            group: None,
            jti: None,
            reason: None,
            outcome: None,
            log_index,
        };
        match event {
            DomainEvent::DecisionResolved { resolution, .. } => data.resolution = Some(*resolution),
            DomainEvent::DecisionEscalated { group, .. } => data.group = Some(group.clone()),
            DomainEvent::TokenRedeemed { jti, .. } => data.jti = Some(jti.clone()),
            DomainEvent::ExecutionRefused { reason, .. } => data.reason = Some(reason.clone()),
            DomainEvent::OutcomeRecorded { status, .. } => data.outcome = Some(*status),
            _ => {}
        }
        data
    }

    /// The JSON body of a webhook or callback for this data.
    pub fn envelope(&self, event_type: &str, timestamp: &str) -> String {
        serde_json::to_string(&Envelope {
            event_type,
            timestamp,
            data: self,
        })
        // Plain data of strings and enums always serialises.
        .unwrap_or_default()
    }
}
