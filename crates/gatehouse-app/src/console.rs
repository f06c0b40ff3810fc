//! What the reviewer console shows besides single decisions: the queue of
//! requests a person may review, a decision's timeline from its log
//! entries, and earlier decisions about the same subject or task.

use gatehouse_core::decision::to_unix_millis;
use gatehouse_core::review_rule::Vote;
use gatehouse_core::{Decision, ReviewChoice, Risk, Status};
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_store::{DecisionQuery, ListOrder, Role};

use crate::error::AppResult;
use crate::{now, App, Caller};

/// Rows read per store query while filling a queue page.
const SCAN_PAGE: u32 = 200;
/// At most this many pending rows are read for one queue page, so a huge
/// backlog of requests nobody here may review costs a bounded time.
const SCAN_LIMIT: usize = 5_000;

/// The queue's filters and order.
#[derive(Debug, Clone, Default)]
pub struct QueueQuery {
    /// Soonest deadline first (default) or oldest first.
    pub oldest_first: bool,
    pub workflow: Option<String>,
    pub tool: Option<String>,
    pub risk: Option<Risk>,
    /// Only requests that this group may approve.
    pub group: Option<String>,
    /// The cursor of the previous page.
    pub after: Option<String>,
    pub limit: u32,
}

/// One page of the queue, with the cursor of the next.
#[derive(Debug, Clone)]
pub struct QueuePage {
    pub items: Vec<Decision>,
    pub next: Option<String>,
}

/// One step of a decision's history, from its log entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineStep {
    pub index: u64,
    pub at: String,
    pub kind: &'static str,
    pub detail: String,
}

/// Whether `caller` may approve `d` now, by the decision's own review
/// rule (eligible, not the requester, not an approval already given).
pub fn may_review(caller: &Caller, d: &Decision) -> bool {
    if caller.role != Role::Reviewer || d.status != Status::PendingReview {
        return false;
    }
    let vote = Vote {
        key: caller.key_id.clone(),
        identity: caller.identity().to_string(),
        groups: caller.groups.clone(),
        choice: ReviewChoice::Approve,
        action_hash: d.tally().current_action_hash,
        at_ms: to_unix_millis(now()),
    };
    let prior: Vec<Vote> = d.reviews.iter().map(|r| r.vote(&d.action_hash)).collect();
    d.rule().check(&d.created_by, &prior, &vote).is_ok()
}

fn cursor(order_oldest: bool, d: &Decision) -> String {
    if order_oldest {
        d.id.clone()
    } else {
        format!(
            "{}:{}",
            d.deadline.map(to_unix_millis).unwrap_or(i64::MAX),
            d.id
        )
    }
}

impl App {
    /// The pending requests `caller` may review (auditors and admins: all
    /// of them, read-only), filtered and ordered as asked.
    pub async fn queue(&self, caller: &Caller, q: QueueQuery) -> AppResult<QueuePage> {
        caller.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "see the review queue",
        )?;
        let limit = q.limit.clamp(1, 200) as usize;
        let mut query = DecisionQuery {
            status: Some(Status::PendingReview),
            workflow: q.workflow.clone(),
            tool: q.tool.clone(),
            order: if q.oldest_first {
                ListOrder::Oldest
            } else {
                ListOrder::Deadline
            },
            after: q.after.clone(),
            limit: SCAN_PAGE,
            ..Default::default()
        };
        let mut items = Vec::new();
        let mut scanned = 0;
        loop {
            let page = self.store.list_decisions(&query).await?;
            let full = page.len() == SCAN_PAGE as usize;
            scanned += page.len();
            let mut last = None;
            for d in page {
                last = Some(cursor(q.oldest_first, &d));
                let shown = (caller.role != Role::Reviewer || may_review(caller, &d))
                    && q.risk.is_none_or(|r| r == d.request.risk)
                    && q.group.as_ref().is_none_or(|g| {
                        d.rule()
                            .requirements
                            .iter()
                            .any(|r| r.groups.contains(g) || r.escalate_to.as_ref() == Some(g))
                    });
                if shown {
                    items.push(d);
                    if items.len() == limit {
                        let next = last.clone();
                        return Ok(QueuePage { items, next });
                    }
                }
            }
            if !full || scanned >= SCAN_LIMIT {
                // Scanning stopped early: the next page starts where it did.
                let next = (full).then_some(last).flatten();
                return Ok(QueuePage { items, next });
            }
            query.after = last;
        }
    }

    /// Decisions about the same subject or in the same task as `d`, newest
    /// first, without `d` itself.
    pub async fn related(&self, caller: &Caller, d: &Decision) -> AppResult<Vec<Decision>> {
        caller.require(
            &[Role::Reviewer, Role::Auditor, Role::Admin],
            "list decisions",
        )?;
        let mut found = self
            .store
            .list_decisions(&DecisionQuery {
                subject: Some(d.request.subject.clone()),
                limit: 10,
                ..Default::default()
            })
            .await?;
        if let Some(task) = &d.request.task_id {
            let same_task = self
                .store
                .list_decisions(&DecisionQuery {
                    task_id: Some(task.clone()),
                    limit: 10,
                    ..Default::default()
                })
                .await?;
            for t in same_task {
                if !found.iter().any(|f| f.id == t.id) {
                    found.push(t);
                }
            }
        }
        found.retain(|f| f.id != d.id);
        found.sort_by(|a, b| b.id.cmp(&a.id));
        Ok(found)
    }

    /// A decision's history as its log entries tell it: created, reviews,
    /// escalation, token issued and redeemed, receipts, outcomes, flags.
    pub async fn timeline(&self, caller: &Caller, id: &str) -> AppResult<Vec<TimelineStep>> {
        self.read(caller, id).await?;
        let entries = self.store.log_entries_for(id).await?;
        Ok(entries
            .iter()
            .filter_map(|(index, bytes)| {
                let entry = LogEntry::parse(bytes).ok()?;
                let detail = match &entry.event {
                    LogEvent::Decision {
                        verdict,
                        created_by,
                        ..
                    } => {
                        format!("decided {} for key {created_by}", verdict_name(*verdict))
                    }
                    LogEvent::Review {
                        decision,
                        person,
                        reviewer_name,
                        resolves,
                        ..
                    } => {
                        let who = person.clone().or(reviewer_name.clone()).unwrap_or_default();
                        let what = match decision {
                            ReviewChoice::Approve => "approved",
                            ReviewChoice::Reject => "rejected",
                        };
                        let closes = if resolves.unwrap_or(true) {
                            ""
                        } else {
                            " (more approvals needed)"
                        };
                        format!("{who} {what}{closes}")
                    }
                    LogEvent::Escalation { group } => format!("escalated: {group} may review"),
                    LogEvent::Expiry {} => "expired without enough approvals".into(),
                    LogEvent::TokenIssued { jti, exp, .. } => {
                        format!("approval token {jti} issued, valid until {exp}")
                    }
                    LogEvent::TokenRedeemed { redeemed_by, .. } => {
                        format!("token redeemed by {redeemed_by}")
                    }
                    LogEvent::Execution { execution_id, .. } => {
                        format!("execution receipt {execution_id}")
                    }
                    LogEvent::Outcome { status, .. } => format!(
                        "outcome reported: {}",
                        serde_json::to_value(status).ok()?.as_str()?
                    ),
                    LogEvent::Flag { reason } => format!("flagged: {reason}"),
                    _ => return None,
                };
                Some(TimelineStep {
                    index: *index,
                    at: entry.ts.clone(),
                    kind: entry.event.kind(),
                    detail,
                })
            })
            .collect())
    }
}

fn verdict_name(v: gatehouse_core::Verdict) -> &'static str {
    match v {
        gatehouse_core::Verdict::Allow => "allow",
        gatehouse_core::Verdict::Reject => "reject",
        gatehouse_core::Verdict::PendingReview => "pending_review",
    }
}
