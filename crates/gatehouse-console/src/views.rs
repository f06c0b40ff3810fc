//! What the templates show, computed from decisions once per page.

use gatehouse_app::sessions::ConsoleSession;
use gatehouse_core::decision::rfc3339;
use gatehouse_core::Decision;
use serde_json::{Map, Value};
use time::OffsetDateTime;

/// The signed-in person, for the page header and forms.
#[derive(Debug, Clone)]
pub struct MeView {
    pub name: String,
    pub role: String,
    pub groups: Vec<String>,
    pub csrf: String,
}

impl MeView {
    pub(crate) fn of(s: &ConsoleSession) -> MeView {
        MeView {
            name: s.user.name.clone(),
            role: s.user.role.as_str().to_string(),
            groups: s.user.groups.clone(),
            csrf: s.csrf.clone(),
        }
    }
}

/// "3m", "2h 5m", "4d 1h": how long ago or how long left.
pub(crate) fn span(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, (s % 86_400) / 3600, (s % 3600) / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m")
    } else {
        format!("{s}s")
    }
}

/// One row of the queue.
pub(crate) struct QueueRow {
    pub id: String,
    pub workflow: String,
    pub tool: String,
    pub subject: String,
    pub risk: &'static str,
    pub created_at: String,
    pub age: String,
    pub deadline: String,
    pub left: String,
    /// "1 of 2" (summed over requirements).
    pub progress: String,
    pub reviewable: bool,
}

impl QueueRow {
    pub(crate) fn of(d: &Decision, reviewable: bool, now: OffsetDateTime) -> QueueRow {
        let rule = d.rule();
        let tally = d.tally();
        let need: u32 = rule.requirements.iter().map(|r| r.quorum).sum();
        let have: u32 = rule
            .requirements
            .iter()
            .zip(&tally.requirements)
            .map(|(r, t)| (t.approvers.len() as u32).min(r.quorum))
            .sum();
        QueueRow {
            id: d.id.clone(),
            workflow: d.request.agent.clone(),
            tool: d.request.action.clone(),
            subject: d.request.subject.clone(),
            risk: d.request.risk.as_str(),
            created_at: rfc3339(d.created_at),
            age: span((now - d.created_at).whole_seconds()),
            deadline: d.deadline.map(rfc3339).unwrap_or_default(),
            left: d
                .deadline
                .map(|dl| format!("{} left", span((dl - now).whole_seconds())))
                .unwrap_or_default(),
            progress: format!("{have} of {need}"),
            reviewable,
        }
    }
}

/// One row of the history.
pub(crate) struct HistoryRow {
    pub id: String,
    pub created_at: String,
    pub workflow: String,
    pub tool: String,
    pub subject: String,
    pub status: &'static str,
}

impl HistoryRow {
    pub(crate) fn of(d: &Decision) -> HistoryRow {
        HistoryRow {
            id: d.id.clone(),
            created_at: rfc3339(d.created_at),
            workflow: d.request.agent.clone(),
            tool: d.request.action.clone(),
            subject: d.request.subject.clone(),
            status: d.status.as_str(),
        }
    }
}

pub(crate) struct ReasonRow {
    pub message: String,
    pub policy: String,
}

pub(crate) struct ReviewRow {
    pub at: String,
    pub who: String,
    pub decision: String,
    pub comment: String,
}

pub(crate) struct DiffRow {
    pub field: String,
    pub proposed: String,
    pub amended: String,
    pub changed: bool,
}

/// Everything the decision page shows about the decision itself.
pub(crate) struct DecisionView {
    pub id: String,
    pub status: &'static str,
    pub workflow: String,
    pub task: String,
    pub tool: String,
    pub subject: String,
    pub risk: &'static str,
    pub asked_by: String,
    pub created_at: String,
    pub deadline: String,
    pub policy_version: String,
    pub preview: String,
    pub summary: Vec<String>,
    pub reasons: Vec<ReasonRow>,
    /// The payload approvals count for now, pretty-printed.
    pub payload: String,
    /// Proposed against amended, field by field, once amended.
    pub diff: Vec<DiffRow>,
    pub requirements: Vec<String>,
    pub reviews: Vec<ReviewRow>,
}

fn pretty(v: &Map<String, Value>) -> String {
    serde_json::to_string_pretty(v).unwrap_or_default()
}

fn diff(proposed: &Map<String, Value>, amended: &Map<String, Value>) -> Vec<DiffRow> {
    let mut fields: Vec<&String> = proposed.keys().chain(amended.keys()).collect();
    fields.sort();
    fields.dedup();
    let show = |v: Option<&Value>| v.map_or_else(|| "—".to_string(), Value::to_string);
    fields
        .into_iter()
        .map(|f| DiffRow {
            field: f.clone(),
            proposed: show(proposed.get(f)),
            amended: show(amended.get(f)),
            changed: proposed.get(f) != amended.get(f),
        })
        .collect()
}

impl DecisionView {
    pub(crate) fn of(d: &Decision, asked_by: String) -> DecisionView {
        let rule = d.rule();
        let tally = d.tally();
        // The amendment approvals count for now, if there is one.
        let amended = d
            .reviews
            .iter()
            .rev()
            .find(|r| r.action_hash.as_deref() == Some(tally.current_action_hash.as_str()))
            .and_then(|r| r.amended_payload.as_ref());
        let current = amended.unwrap_or(&d.request.payload);
        let requirements = if d.verdict == gatehouse_core::Verdict::PendingReview {
            rule.requirements
                .iter()
                .zip(&tally.requirements)
                .map(|(r, t)| {
                    let who = r.eligible_label();
                    let escalation = match (&r.escalate_to, &r.escalate_at) {
                        (Some(g), Some(at)) => format!("; {g} may step in from {at}"),
                        _ => String::new(),
                    };
                    let by = if t.approvers.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", t.approvers.join(", "))
                    };
                    format!(
                        "{} of {} from {who}{by}{escalation}",
                        t.approvers.len().min(r.quorum as usize),
                        r.quorum
                    )
                })
                .collect()
        } else {
            Vec::new()
        };
        let reviews = if d.reviews.is_empty() {
            d.review.iter().collect::<Vec<_>>()
        } else {
            d.reviews.iter().collect()
        };
        DecisionView {
            id: d.id.clone(),
            status: d.status.as_str(),
            workflow: d.request.agent.clone(),
            task: d
                .request
                .task_label
                .clone()
                .or(d.request.task_id.clone())
                .unwrap_or_else(|| "—".into()),
            tool: d.request.action.clone(),
            subject: d.request.subject.clone(),
            risk: d.request.risk.as_str(),
            asked_by,
            created_at: rfc3339(d.created_at),
            deadline: d.deadline.map(rfc3339).unwrap_or_default(),
            policy_version: d.policy_version.clone(),
            preview: d.request.preview.clone().unwrap_or_default(),
            summary: d.request.summary.clone(),
            reasons: d
                .reasons
                .iter()
                .map(|r| ReasonRow {
                    message: r.message.clone(),
                    policy: r.policy_id.clone().unwrap_or_else(|| r.code.clone()),
                })
                .collect(),
            payload: pretty(current),
            diff: amended
                .map(|a| diff(&d.request.payload, a))
                .unwrap_or_default(),
            requirements,
            reviews: reviews
                .into_iter()
                .map(|r| ReviewRow {
                    at: rfc3339(r.reviewed_at),
                    who: r.identity().to_string(),
                    decision: match (r.decision, r.amended_payload.is_some()) {
                        (gatehouse_core::ReviewChoice::Approve, true) => {
                            "approved with changes".into()
                        }
                        (gatehouse_core::ReviewChoice::Approve, false) => "approved".into(),
                        (gatehouse_core::ReviewChoice::Reject, _) => "rejected".into(),
                    },
                    comment: r.comment.clone().unwrap_or_default(),
                })
                .collect(),
        }
    }
}
