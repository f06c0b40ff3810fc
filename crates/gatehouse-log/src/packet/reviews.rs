//! The packet's reviews: each equal to its log entry, and an approved
//! decision's approvals meeting the review rule its record fixed.

use super::verify::Checks;
use super::{Packet, PacketReview};
use crate::entry::comment_hash;
use crate::state::{DecisionState, LoggedReview};

/// The record's review rule is the one logged, and an approved decision's
/// approvals meet it: every requirement by enough distinct people who were
/// eligible when they approved the same action, none of them the requester.
pub(super) fn review_rule(c: &mut Checks, packet: &Packet, state: &DecisionState) {
    if packet.record.review_rule != state.rule {
        c.add(
            "review_rule",
            false,
            "the record's review rule is not the one its decision entry logged",
        );
        return;
    }
    let Some(rule) = &state.rule else {
        return;
    };
    let tally = rule.tally(&state.votes(), &state.action_hash);
    let mut missing = Vec::new();
    if packet.status == "approved" {
        for (n, (req, t)) in rule
            .requirements
            .iter()
            .zip(&tally.requirements)
            .enumerate()
        {
            if !t.met {
                let groups = if req.groups.is_empty() {
                    "any reviewer".to_string()
                } else {
                    req.groups.join(" or ")
                };
                missing.push(format!(
                    "requirement {} ({groups}) has {} of {} approvals from eligible people{}",
                    n + 1,
                    t.approvers.len(),
                    req.quorum,
                    if t.approvers.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", t.approvers.join(", "))
                    }
                ));
            }
        }
    }
    if packet
        .approved_action_hash
        .as_deref()
        .is_some_and(|h| h != state.approved_action_hash)
    {
        missing.push(format!(
            "approved_action_hash is not the {} the approvals approved",
            state.approved_action_hash
        ));
    }
    c.all(
        "review_rule",
        missing,
        format!(
            "the decision needed {} and its reviews are judged by it: distinct eligible people, none of them the requester ({})",
            rule.requirements
                .iter()
                .map(|r| format!("{} of {}", r.quorum, if r.groups.is_empty() { "any reviewer".into() } else { r.groups.join("/") }))
                .collect::<Vec<_>>()
                .join(" and "),
            if rule.requester.is_empty() { "unnamed" } else { &rule.requester }
        ),
    );
}

pub(super) fn reviews(
    packet: &Packet,
    logged: &[crate::state::Logged<LoggedReview>],
) -> Vec<String> {
    let shown: &[PacketReview] = &packet.reviews;
    let mut wrong = Vec::new();
    if shown.len() != logged.len() {
        wrong.push(format!(
            "the packet shows {} reviews; the log has {}",
            shown.len(),
            logged.len()
        ));
    }
    for (r, l) in shown.iter().zip(logged) {
        let comment_hash = r.comment.as_deref().map(comment_hash);
        let mut fields = Vec::new();
        if r.index != l.index {
            fields.push("index");
        }
        if r.decision != l.item.decision {
            fields.push("decision");
        }
        if r.reviewer_key_id != l.item.reviewer {
            fields.push("reviewer_key_id");
        }
        // A version 2 entry records the name ("" for none); version 1 none.
        let name = match &l.item.reviewer_name {
            Some(n) => r.reviewer_name.clone().unwrap_or_default() == *n,
            None => r.reviewer_name.is_none(),
        };
        if !name {
            fields.push("reviewer_name");
        }
        if comment_hash != l.item.comment_hash {
            fields.push("comment");
        }
        if r.reviewed_at != l.ts {
            fields.push("reviewed_at");
        }
        if r.person != l.item.person {
            fields.push("person");
        }
        if r.groups != l.item.groups {
            fields.push("groups");
        }
        if r.action_hash != l.item.action_hash {
            fields.push("action_hash");
        }
        if let (Some(amended), Some(req)) = (&r.amended_payload, &packet.request) {
            let hash = gatehouse_core::action_hash(&req.tool_name, &req.subject, amended);
            if Some(hash) != l.item.action_hash {
                fields.push("amended_payload");
            }
        }
        if !fields.is_empty() {
            wrong.push(format!(
                "the review shown for entry {} differs from it in: {}",
                l.index,
                fields.join(", ")
            ));
        }
    }
    wrong
}
