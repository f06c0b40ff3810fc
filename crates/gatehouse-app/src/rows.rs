//! Rows are caches of log entries. Everything stored about one decision is
//! compared here with the state derived from its entries, field by field,
//! so an edit, a deletion or an insertion behind the server's back is named.
//! `gatehouse log verify` runs this on every decision, `/verify` on one.

use std::collections::BTreeMap;

use gatehouse_core::decision::rfc3339;
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review};
use gatehouse_log::entry::{LogEntry, LogEvent};
use gatehouse_log::state::{DecisionState, Logged, LoggedReview};
use gatehouse_store::prelude::*;
use gatehouse_store::{IssuedToken, Redemption, StoreResult};

/// Everything the tables hold about one decision.
#[derive(Debug, Default)]
pub struct StoredRows {
    pub decision: Option<Decision>,
    pub token: Option<IssuedToken>,
    pub redemptions: Vec<Redemption>,
    pub executions: Vec<ExecutionReceipt>,
    pub outcomes: Vec<OutcomeRecord>,
}

impl StoredRows {
    pub async fn read(store: &dyn Store, id: &str) -> StoreResult<StoredRows> {
        Ok(StoredRows {
            decision: store.get_decision(id).await?,
            token: store.get_token(id).await?,
            redemptions: store.list_redemptions(id).await?,
            executions: store.list_executions(id).await?,
            outcomes: store.list_outcomes(id).await?,
        })
    }
}

/// Each way the rows of `state.decision_id` disagree with its entries, as
/// a sentence naming the row and the entry.
pub fn disagreements(state: &DecisionState, rows: &StoredRows) -> Vec<String> {
    let mut out = Vec::new();
    let mut say = |what: String| out.push(what);
    match &rows.decision {
        None => say(format!(
            "its row is gone while its log entries remain (from entry {})",
            state.index
        )),
        Some(d) => {
            decision_row(state, d, &mut say);
            let flag_log = state.flags.last().map(|f| f.item.as_str());
            if d.flag.as_deref() != flag_log {
                say(format!(
                    "the row's flag is {} but its log entries say {}",
                    shown(d.flag.as_deref()),
                    shown(flag_log)
                ));
            }
        }
    }
    token(state, rows.token.as_ref(), &mut say);
    redemptions(state, &rows.redemptions, &mut say);
    evidence(
        "receipt",
        state.executions.iter().map(|e| {
            (
                e.item.execution_id.clone(),
                (e.index, e.item.execution_hash.clone()),
            )
        }),
        rows.executions
            .iter()
            .map(|r| (r.execution_id.clone(), r.hash())),
        &mut say,
    );
    evidence(
        "outcome",
        state.outcomes.iter().map(|o| {
            (
                o.item.outcome_id.clone(),
                (o.index, o.item.outcome_hash.clone()),
            )
        }),
        rows.outcomes
            .iter()
            .map(|o| (o.outcome_id.clone(), o.hash())),
        &mut say,
    );
    let id = &state.decision_id;
    out.into_iter()
        .map(|w| format!("decision {id}: {w}"))
        .collect()
}

/// What the decision's own row says about its resolution (status, review,
/// resolution time) against its entries. The server checks this before it
/// acts on an approval; it reads nothing beyond the row.
pub fn decision_row_disagreements(state: &DecisionState, d: &Decision) -> Vec<String> {
    let mut out = Vec::new();
    decision_row(state, d, &mut |w| out.push(w));
    out
}

/// How a stored token differs from its `token_issued` entry: checked
/// before the server signs the stored claims again, so a claim edited in
/// the database is never signed.
pub fn token_row_disagreements(state: &DecisionState, t: &IssuedToken) -> Vec<String> {
    let mut out = Vec::new();
    token(state, Some(t), &mut |what| out.push(what));
    out
}

fn decision_row(state: &DecisionState, d: &Decision, say: &mut impl FnMut(String)) {
    if d.status != state.status {
        say(format!(
            "the row's status is {} but its log entries say {}",
            d.status.as_str(),
            state.status.as_str()
        ));
    }
    review(state, d, say);
    let resolved_row = d.resolved_at.map(rfc3339);
    let resolved_log = state.resolved.as_ref().map(|r| r.ts.clone());
    if resolved_row != resolved_log {
        say(format!(
            "the row's resolved_at is {} but its log entries say {}",
            shown(resolved_row.as_deref()),
            shown(resolved_log.as_deref())
        ));
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_string(), |v| format!("\"{v}\""))
}

/// The fields in which the entry a row's review would produce differs
/// from the logged review `l`.
fn review_fields(d: &Decision, r: &Review, l: &Logged<LoggedReview>) -> Vec<&'static str> {
    let LogEvent::Review {
        decision,
        reviewer,
        reviewer_name,
        comment_hash,
        person,
        groups,
        action_hash,
        ..
    } = LogEntry::review(&d.id, r, false).event
    else {
        return vec!["type"];
    };
    let mut fields = Vec::new();
    if decision != l.item.decision {
        fields.push("decision");
    }
    if reviewer != l.item.reviewer {
        fields.push("reviewer");
    }
    // Entries logged before version 2 did not record the name.
    if l.item.reviewer_name.is_some() && reviewer_name != l.item.reviewer_name {
        fields.push("reviewer_name");
    }
    if comment_hash != l.item.comment_hash {
        fields.push("comment");
    }
    if rfc3339(r.reviewed_at) != l.ts {
        fields.push("reviewed_at");
    }
    // Reviews logged before review rules record no person or action.
    if l.item.action_hash.is_some() && (person != l.item.person || groups != l.item.groups) {
        fields.push("reviewer's person or groups");
    }
    if l.item.action_hash.is_some() && action_hash != l.item.action_hash {
        fields.push("action_hash");
    }
    fields
}

/// The row's resolving review against the review its entries resolved it
/// with, and every review in the row's list against the logged ones.
fn review(state: &DecisionState, d: &Decision, say: &mut impl FnMut(String)) {
    let resolving = state
        .resolved
        .as_ref()
        .and_then(|r| state.reviews.iter().find(|l| l.index == r.index));
    match (&d.review, resolving) {
        (None, None) => {}
        (Some(_), None) => say("the row has a review that no log entry records".into()),
        (None, Some(l)) => say(format!(
            "the review logged at entry {} is missing from the row",
            l.index
        )),
        (Some(r), Some(l)) => {
            let fields = review_fields(d, r, l);
            if !fields.is_empty() {
                say(format!(
                    "the row's review differs from log entry {} in: {}",
                    l.index,
                    fields.join(", ")
                ));
            }
        }
    }
    // Rows written before review rules keep only the resolving review.
    if d.reviews.is_empty() && state.reviews.len() <= 1 {
        return;
    }
    if d.reviews.len() != state.reviews.len() {
        say(format!(
            "the row lists {} reviews but its log entries record {}",
            d.reviews.len(),
            state.reviews.len()
        ));
    }
    for (r, l) in d.reviews.iter().zip(&state.reviews) {
        let fields = review_fields(d, r, l);
        if !fields.is_empty() {
            say(format!(
                "the row's list of reviews differs from log entry {} in: {}",
                l.index,
                fields.join(", ")
            ));
        }
    }
}

fn token(state: &DecisionState, row: Option<&IssuedToken>, say: &mut impl FnMut(String)) {
    match (row, &state.token) {
        (None, None) => {}
        (Some(t), None) => say(format!(
            "approval token {} has no token_issued log entry",
            t.jti
        )),
        (None, Some(l)) => say(format!(
            "the approval token logged at entry {} is missing from the tokens table",
            l.index
        )),
        (Some(t), Some(l)) => {
            let mut fields = Vec::new();
            if t.jti != l.item.jti {
                fields.push("jti");
            }
            if t.kid != l.item.kid {
                fields.push("kid");
            }
            if rfc3339(t.expires_at) != l.item.exp {
                fields.push("expiry");
            }
            if l.item
                .claims_hash
                .as_ref()
                .is_some_and(|h| *h != t.claims_hash)
            {
                fields.push("claims");
            }
            if !fields.is_empty() {
                say(format!(
                    "the stored approval token differs from log entry {} in: {}",
                    l.index,
                    fields.join(", ")
                ));
            }
        }
    }
}

fn redemptions(state: &DecisionState, rows: &[Redemption], say: &mut impl FnMut(String)) {
    let logged: BTreeMap<String, (u64, String)> = state
        .redemptions
        .iter()
        .map(|r| {
            let what = format!("{} by {} at {}", r.item.jti, r.item.redeemed_by, r.ts);
            (what, (r.index, r.item.jti.clone()))
        })
        .collect();
    let stored: BTreeMap<String, String> = rows
        .iter()
        .map(|r| {
            let what = format!("{} by {} at {}", r.jti, r.redeemed_by, rfc3339(r.at));
            (what, r.jti.clone())
        })
        .collect();
    for (what, (index, jti)) in &logged {
        if !stored.contains_key(what) {
            say(format!(
                "the redemption of token {jti} logged at entry {index} is missing from the redemptions table or differs from it"
            ));
        }
    }
    for (what, jti) in &stored {
        if !logged.contains_key(what) {
            say(format!(
                "the stored redemption of token {jti} has no matching log entry"
            ));
        }
    }
}

/// Receipts or outcomes: by id, each row's content hash against its entry.
fn evidence(
    kind: &str,
    logged: impl Iterator<Item = (String, (u64, String))>,
    stored: impl Iterator<Item = (String, String)>,
    say: &mut impl FnMut(String),
) {
    let logged: BTreeMap<String, (u64, String)> = logged.collect();
    let mut stored: BTreeMap<String, String> = stored.collect();
    for (id, (index, hash)) in &logged {
        match stored.remove(id) {
            None => say(format!(
                "{kind} {id} logged at entry {index} is missing from its table"
            )),
            Some(h) if h != *hash => say(format!(
                "{kind} {id} was changed after log entry {index} recorded it"
            )),
            Some(_) => {}
        }
    }
    for id in stored.keys() {
        say(format!("{kind} {id} has no log entry"));
    }
}
