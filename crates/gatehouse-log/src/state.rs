//! A decision's state, derived from its log entries alone: what the
//! server checks before it acts, what `log verify` compares every row with,
//! and what a Decision Packet's claims are checked against. The rules that
//! decide whether an entry may follow the ones before it are in
//! [`crate::rules`], shared with the server.

use gatehouse_core::execution::OutcomeStatus;
use gatehouse_core::review_rule::{unix_ms, ReviewRule, Vote};
use gatehouse_core::{ReviewChoice, Status, Verdict};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::entry::{LogEntry, LogEvent};
use crate::proof::leaf_hash;
use crate::rules;

/// Something logged, with where and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged<T> {
    pub index: u64,
    /// The entry's `ts` (RFC 3339).
    pub ts: String,
    pub item: T,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedReview {
    pub decision: ReviewChoice,
    pub reviewer: String,
    pub reviewer_name: Option<String>,
    pub comment_hash: Option<String>,
    /// With review rules: the person (or key name), their groups, and the
    /// action the review saw or approved.
    pub person: Option<String>,
    pub groups: Option<Vec<String>>,
    pub action_hash: Option<String>,
}

impl LoggedReview {
    /// The review as the rule sees it, made at `ts`.
    pub fn vote(&self, proposed: &str, ts: &str) -> Vote {
        Vote {
            key: self.reviewer.clone(),
            identity: self
                .person
                .clone()
                .or_else(|| self.reviewer_name.clone())
                .unwrap_or_else(|| self.reviewer.clone()),
            groups: self.groups.clone().unwrap_or_default(),
            choice: self.decision,
            action_hash: self
                .action_hash
                .clone()
                .unwrap_or_else(|| proposed.to_string()),
            at_ms: unix_ms(ts).unwrap_or(i64::MIN),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedToken {
    pub jti: String,
    pub kid: String,
    /// Expiry, RFC 3339.
    pub exp: String,
    pub claims_hash: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedRedemption {
    pub jti: String,
    pub redeemed_by: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedExecution {
    pub execution_id: String,
    pub execution_hash: String,
    pub action_hash: String,
    pub token_jti: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoggedOutcome {
    pub outcome_id: String,
    pub outcome_hash: String,
    pub status: OutcomeStatus,
}

/// Everything the log says about one decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecisionState {
    pub decision_id: String,
    /// The decision entry's index and time.
    pub index: u64,
    pub created_at: String,
    pub verdict: Verdict,
    pub record_hash: String,
    /// The decision entry's leaf hash (hex): what its token's `dec` names.
    pub leaf_hash: String,
    pub action_hash: String,
    pub policy_version: String,
    pub created_by: String,
    /// Who must approve, as the decision entry fixed it (`None` before
    /// review rules: any reviewer, one approval).
    pub rule: Option<ReviewRule>,
    pub status: Status,
    /// The entry that resolved a pending decision (review or expiry).
    pub resolved: Option<Logged<()>>,
    pub reviews: Vec<Logged<LoggedReview>>,
    /// The groups that became eligible by escalation.
    pub escalations: Vec<Logged<String>>,
    /// The action the agent may run once approved: the proposed one, or
    /// the amendment the approvals approved.
    pub approved_action_hash: String,
    pub token: Option<Logged<LoggedToken>>,
    pub redemptions: Vec<Logged<LoggedRedemption>>,
    pub executions: Vec<Logged<LoggedExecution>>,
    pub outcomes: Vec<Logged<LoggedOutcome>>,
    pub flags: Vec<Logged<String>>,
    /// Whether the decision was logged as version 2, so every entry after
    /// it names the previous one.
    pub chained: bool,
    /// The index and leaf hash (hex) of the last entry about the decision.
    pub last: (u64, String),
}

impl DecisionState {
    /// The reviews as the rule sees them, in log order.
    pub fn votes(&self) -> Vec<Vote> {
        self.reviews
            .iter()
            .map(|r| r.item.vote(&self.action_hash, &r.ts))
            .collect()
    }

    /// The rule the reviews are judged by.
    pub fn review_rule(&self) -> ReviewRule {
        self.rule.clone().unwrap_or_else(ReviewRule::legacy)
    }

    /// The entry that makes the action permitted: the decision itself for
    /// `allow`, the approving review for `approved`; `None` otherwise.
    pub fn permit_index(&self) -> Option<u64> {
        match self.status {
            Status::Allow => Some(self.index),
            Status::Approved => self.resolved.as_ref().map(|r| r.index),
            _ => None,
        }
    }
}

/// RFC 3339 to Unix seconds.
pub fn unix(ts: &str) -> Option<i64> {
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(|t| t.unix_timestamp())
}

/// Derives the state of `decision_id` from its entries (index, exact leaf
/// bytes), in log order. Every problem is named with its entry's index; a
/// state is returned whenever the first entry is the decision's.
pub fn derive(
    decision_id: &str,
    entries: &[(u64, Vec<u8>)],
) -> (Option<DecisionState>, Vec<String>) {
    let mut problems = Vec::new();
    let mut state: Option<DecisionState> = None;
    for (index, bytes) in entries {
        let entry = match LogEntry::parse(bytes) {
            Ok(e) => e,
            Err(e) => {
                problems.push(format!("log entry {index}: {e}"));
                continue;
            }
        };
        if entry.id != decision_id {
            problems.push(format!(
                "log entry {index} is about {}, not {decision_id}",
                entry.id
            ));
            continue;
        }
        let hash = hex::encode(leaf_hash(bytes).0);
        let Some(s) = state.as_mut() else {
            match first(*index, &entry, hash) {
                Ok(s) => state = Some(s),
                Err(p) => problems.push(p),
            }
            continue;
        };
        // The chain: a version 2 entry names the one before it; after a
        // version 2 decision, every entry does.
        match &entry.prev {
            Some(prev) if *prev != s.last.1 => problems.push(format!(
                "log entry {index} does not follow entry {} (an entry about the decision is missing or was replaced)",
                s.last.0
            )),
            None if s.chained => problems.push(format!(
                "log entry {index} names no previous entry although the decision's entries are chained"
            )),
            _ => {}
        }
        s.last = (*index, hash);
        if let Err(p) = apply(s, *index, entry) {
            problems.push(format!("log entry {index}: {p}"));
        }
    }
    if state.is_none() && problems.is_empty() {
        problems.push(format!("no log entry records decision {decision_id}"));
    }
    (state, problems)
}

fn first(index: u64, entry: &LogEntry, hash: String) -> Result<DecisionState, String> {
    let LogEvent::Decision {
        request_id: _,
        record_hash,
        verdict,
        policy_version,
        action_hash,
        created_by,
        review_rule,
    } = &entry.event
    else {
        return Err(format!(
            "log entry {index} ({}) comes before the decision's own entry",
            entry.event.kind()
        ));
    };
    Ok(DecisionState {
        decision_id: entry.id.clone(),
        index,
        created_at: entry.ts.clone(),
        verdict: *verdict,
        record_hash: record_hash.clone(),
        leaf_hash: hash.clone(),
        action_hash: action_hash.clone(),
        policy_version: policy_version.clone(),
        created_by: created_by.clone(),
        rule: review_rule.clone(),
        status: verdict.initial_status(),
        resolved: None,
        reviews: Vec::new(),
        escalations: Vec::new(),
        approved_action_hash: action_hash.clone(),
        token: None,
        redemptions: Vec::new(),
        executions: Vec::new(),
        outcomes: Vec::new(),
        flags: Vec::new(),
        chained: entry.v >= 2,
        last: (index, hash),
    })
}

fn logged<T>(index: u64, ts: &str, item: T) -> Logged<T> {
    Logged {
        index,
        ts: ts.to_string(),
        item,
    }
}

/// Applies one entry to the state, if the rules allow it to follow.
fn apply(s: &mut DecisionState, index: u64, entry: LogEntry) -> Result<(), String> {
    let ts = entry.ts;
    let when = unix(&ts);
    match entry.event {
        LogEvent::Decision { .. } => return Err("a second decision entry".into()),
        LogEvent::Review {
            decision,
            reviewer,
            reviewer_name,
            comment_hash,
            person,
            groups,
            action_hash,
            resolves,
        } => {
            if s.status != Status::PendingReview {
                return Err(format!(
                    "a review of a decision that is {}",
                    s.status.as_str()
                ));
            }
            let review = LoggedReview {
                decision,
                reviewer,
                reviewer_name,
                comment_hash,
                person,
                groups,
                action_hash,
            };
            let prior = s.votes();
            let vote = review.vote(&s.action_hash, &ts);
            if let Some(rule) = &s.rule {
                if review.person.is_none()
                    || review.groups.is_none()
                    || review.action_hash.is_none()
                {
                    return Err("a review of a decision with a review rule names no person, groups or action".into());
                }
                if let Err(refusal) = rule.check(&s.created_by, &prior, &vote) {
                    return Err(format!("a review that should have been refused: {refusal}"));
                }
            }
            s.reviews.push(logged(index, &ts, review));
            let mut votes = prior;
            votes.push(vote);
            let tally = s.review_rule().tally(&votes, &s.action_hash);
            if resolves.is_some_and(|r| r != tally.outcome.is_some()) {
                return Err(format!(
                    "a review that claims it {} the decision, which its rule says it does not",
                    if tally.outcome.is_some() {
                        "left pending"
                    } else {
                        "resolved"
                    }
                ));
            }
            if let Some(outcome) = tally.outcome {
                s.status = outcome;
                s.resolved = Some(logged(index, &ts, ()));
                if outcome == Status::Approved {
                    s.approved_action_hash = tally.current_action_hash;
                }
            }
        }
        LogEvent::Escalation { group } => {
            if s.status != Status::PendingReview {
                return Err(format!(
                    "an escalation of a decision that is {}",
                    s.status.as_str()
                ));
            }
            let scheduled = s.rule.as_ref().is_some_and(|r| {
                r.requirements.iter().any(|q| {
                    q.escalate_to.as_deref() == Some(group.as_str())
                        && matches!((q.escalate_at_ms(), unix_ms(&ts)), (Some(due), Some(at)) if at >= due)
                })
            });
            if !scheduled {
                return Err(format!(
                    "an escalation to {group} that the decision's rule does not schedule by then"
                ));
            }
            s.escalations.push(logged(index, &ts, group));
        }
        LogEvent::Expiry {} => {
            if s.status != Status::PendingReview {
                return Err(format!(
                    "an expiry of a decision that is {}",
                    s.status.as_str()
                ));
            }
            s.status = Status::Expired;
            s.resolved = Some(logged(index, &ts, ()));
        }
        LogEvent::TokenIssued {
            jti,
            kid,
            exp,
            claims_hash,
        } => {
            if !s.status.permits_action() {
                return Err(format!(
                    "a token for a decision that is {}",
                    s.status.as_str()
                ));
            }
            if s.token.is_some() {
                return Err("a second approval token".into());
            }
            s.token = Some(logged(
                index,
                &ts,
                LoggedToken {
                    jti,
                    kid,
                    exp,
                    claims_hash,
                },
            ));
        }
        LogEvent::TokenRedeemed { jti, redeemed_by } => {
            if let Some(why) = rules::redemption_refusal(s, &jti, when) {
                return Err(why);
            }
            s.redemptions
                .push(logged(index, &ts, LoggedRedemption { jti, redeemed_by }));
        }
        LogEvent::Execution {
            execution_id,
            execution_hash,
            action_hash,
            token_jti,
        } => {
            let refusal = rules::receipt_refusal(s, &action_hash, token_jti.as_deref(), when);
            if let Some(why) = refusal {
                return Err(format!(
                    "receipt {execution_id} should have been refused: {why}"
                ));
            }
            s.executions.push(logged(
                index,
                &ts,
                LoggedExecution {
                    execution_id,
                    execution_hash,
                    action_hash,
                    token_jti,
                },
            ));
        }
        LogEvent::Outcome {
            outcome_id,
            outcome_hash,
            status,
        } => s.outcomes.push(logged(
            index,
            &ts,
            LoggedOutcome {
                outcome_id,
                outcome_hash,
                status,
            },
        )),
        LogEvent::Flag { reason } => s.flags.push(logged(index, &ts, reason)),
        other @ (LogEvent::TaskEvent { .. }
        | LogEvent::PolicyVersion { .. }
        | LogEvent::KeyEvent { .. }
        | LogEvent::HookEvent { .. }
        | LogEvent::UserEvent { .. }) => {
            return Err(format!("a {} entry is not about a decision", other.kind()))
        }
    }
    Ok(())
}
