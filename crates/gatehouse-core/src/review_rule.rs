//! Who must approve a pending decision, and whether the reviews so far
//! meet that. One function set, used by the server before it records a
//! review, by each store inside the transaction that records it, by
//! `derive` over the log, and by the offline packet verifier, so none of
//! them can disagree.
//!
//! A decision's [`ReviewRule`] is fixed when it is created (it is part of
//! the hashed record): one [`Requirement`] per matching review policy. It
//! is approved when every requirement has `quorum` distinct people who
//! were eligible for it when they approved, all approving the same action
//! (an amendment restarts the count); one reject by an eligible reviewer
//! rejects it. The requester never reviews their own request.

use serde::{Deserialize, Serialize};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::{ReviewChoice, Status};

/// One requirement: `quorum` distinct approvers from `groups`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Requirement {
    /// Groups whose members may approve; empty means any reviewer.
    pub groups: Vec<String>,
    /// Distinct people needed.
    pub quorum: u32,
    /// A group that becomes eligible too at `escalate_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_to: Option<String>,
    /// When `escalate_to` becomes eligible (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate_at: Option<String>,
    /// The review policy that set this requirement, if one did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_id: Option<String>,
}

impl Requirement {
    /// Who may approve, for people: `any reviewer`, or the groups.
    pub fn eligible_label(&self) -> String {
        if self.groups.is_empty() {
            "any reviewer".to_string()
        } else {
            self.groups.join(" or ")
        }
    }
}

impl Requirement {
    /// Any reviewer, one approval: what a decision needs without annotations.
    pub fn anyone() -> Requirement {
        Requirement {
            groups: Vec::new(),
            quorum: 1,
            escalate_to: None,
            escalate_at: None,
            policy_id: None,
        }
    }

    /// Unix milliseconds of `escalate_at`, if it is set and valid.
    pub fn escalate_at_ms(&self) -> Option<i64> {
        self.escalate_at.as_deref().and_then(unix_ms)
    }

    /// Whether someone in `groups` may approve for this requirement at
    /// `at_ms` (Unix milliseconds).
    pub fn admits(&self, groups: &[String], at_ms: i64) -> bool {
        if self.groups.is_empty() {
            return true;
        }
        let escalated = match (&self.escalate_to, self.escalate_at_ms()) {
            (Some(to), Some(when)) if at_ms >= when => Some(to),
            _ => None,
        };
        groups
            .iter()
            .any(|g| self.groups.contains(g) || escalated == Some(g))
    }
}

/// Who may approve a decision, fixed at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ReviewRule {
    /// The identity that asked (the key's person, or the key's name):
    /// they never review their own request.
    pub requester: String,
    /// Every one must be met.
    pub requirements: Vec<Requirement>,
}

/// One review as the rule sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Vote {
    /// The API key it was made with.
    pub key: String,
    /// The person, or the key's name for a key without one.
    pub identity: String,
    /// The reviewer's groups when they reviewed.
    pub groups: Vec<String>,
    pub choice: ReviewChoice,
    /// The action an approval approves (`sha256:`; for a reject, the action
    /// it was shown).
    pub action_hash: String,
    /// Unix milliseconds.
    pub at_ms: i64,
}

/// Why a review may not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    SelfReview,
    NotEligible(String),
    AlreadyReviewed(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SelfReview => f.write_str("the requester may not review their own request"),
            Refusal::NotEligible(m) | Refusal::AlreadyReviewed(m) => f.write_str(m),
        }
    }
}

/// Where one requirement stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequirementTally {
    /// Distinct identities whose approvals of the current action count.
    pub approvers: Vec<String>,
    pub met: bool,
}

/// Where a decision's reviews stand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tally {
    /// `Approved` or `Rejected` once the reviews decide it; `None` while
    /// more are needed.
    pub outcome: Option<Status>,
    /// The action approvals now count for: the latest approval's (an
    /// amendment), or the one proposed.
    pub current_action_hash: String,
    pub requirements: Vec<RequirementTally>,
}

impl ReviewRule {
    /// The rule of a decision recorded before rules existed: any reviewer,
    /// one approval; the requester is checked by key only.
    pub fn legacy() -> ReviewRule {
        ReviewRule {
            requester: String::new(),
            requirements: vec![Requirement::anyone()],
        }
    }

    /// Whether someone in `groups` may review at `at_ms` at all.
    pub fn admits(&self, groups: &[String], at_ms: i64) -> bool {
        self.requirements.iter().any(|r| r.admits(groups, at_ms))
    }

    /// The groups a reviewer may belong to at `at_ms` to review, for
    /// messages; empty when anyone may.
    pub fn eligible_groups(&self, at_ms: i64) -> Vec<String> {
        let mut groups = Vec::new();
        for r in &self.requirements {
            if r.groups.is_empty() {
                return Vec::new();
            }
            groups.extend(r.groups.iter().cloned());
            if let (Some(to), Some(when)) = (&r.escalate_to, r.escalate_at_ms()) {
                if at_ms >= when {
                    groups.push(to.clone());
                }
            }
        }
        groups.sort();
        groups.dedup();
        groups
    }

    /// Why `vote` may not follow `prior` on a decision asked for by key
    /// `requester_key`, or `Ok` when it may.
    pub fn check(&self, requester_key: &str, prior: &[Vote], vote: &Vote) -> Result<(), Refusal> {
        if vote.key == requester_key
            || (!self.requester.is_empty() && vote.identity == self.requester)
        {
            return Err(Refusal::SelfReview);
        }
        if !self.admits(&vote.groups, vote.at_ms) {
            return Err(Refusal::NotEligible(format!(
                "{} is not in a group that may review this request (eligible: {})",
                vote.identity,
                self.eligible_groups(vote.at_ms).join(", ")
            )));
        }
        if vote.choice == ReviewChoice::Approve {
            let current = self.tally(prior, &vote.action_hash).current_action_hash;
            let again = prior.iter().any(|p| {
                p.identity == vote.identity
                    && p.choice == ReviewChoice::Approve
                    && p.action_hash == vote.action_hash
                    && vote.action_hash == current
            });
            if again {
                return Err(Refusal::AlreadyReviewed(format!(
                    "{} has already approved this action; one person counts once",
                    vote.identity
                )));
            }
        }
        Ok(())
    }

    /// Where `votes` (each admitted by [`ReviewRule::check`], in order)
    /// leave a decision whose proposed action hashes to `proposed`.
    pub fn tally(&self, votes: &[Vote], proposed: &str) -> Tally {
        let current = votes
            .iter()
            .rev()
            .find(|v| v.choice == ReviewChoice::Approve)
            .map_or(proposed, |v| v.action_hash.as_str())
            .to_string();
        let requirements: Vec<RequirementTally> = self
            .requirements
            .iter()
            .map(|r| {
                let mut approvers: Vec<String> = Vec::new();
                for v in votes {
                    let counts = v.choice == ReviewChoice::Approve
                        && v.action_hash == current
                        && r.admits(&v.groups, v.at_ms);
                    if counts && !approvers.contains(&v.identity) {
                        approvers.push(v.identity.clone());
                    }
                }
                let met = approvers.len() as u64 >= u64::from(r.quorum);
                RequirementTally { approvers, met }
            })
            .collect();
        let outcome = if votes.iter().any(|v| v.choice == ReviewChoice::Reject) {
            Some(Status::Rejected)
        } else if requirements.iter().all(|r| r.met) && !votes.is_empty() {
            Some(Status::Approved)
        } else {
            None
        };
        Tally {
            outcome,
            current_action_hash: current,
            requirements,
        }
    }

    /// The earliest escalation after `after_ms`, if any: when the sweeper
    /// must next look at the decision.
    pub fn next_escalation_after(&self, after_ms: i64) -> Option<i64> {
        self.requirements
            .iter()
            .filter_map(Requirement::escalate_at_ms)
            .filter(|t| *t > after_ms)
            .min()
    }
}

/// RFC 3339 to Unix milliseconds.
pub fn unix_ms(ts: &str) -> Option<i64> {
    OffsetDateTime::parse(ts, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(groups: &[&str], quorum: u32) -> Requirement {
        Requirement {
            groups: groups.iter().map(|g| g.to_string()).collect(),
            quorum,
            ..Requirement::anyone()
        }
    }

    fn vote(who: &str, groups: &[&str], choice: ReviewChoice, hash: &str, at_ms: i64) -> Vote {
        Vote {
            key: format!("key-{who}"),
            identity: who.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
            choice,
            action_hash: hash.into(),
            at_ms,
        }
    }

    const A: ReviewChoice = ReviewChoice::Approve;

    #[test]
    fn two_of_finance_needs_two_distinct_people() {
        let rule = ReviewRule {
            requester: "agent".into(),
            requirements: vec![req(&["finance"], 2)],
        };
        let ana = vote("ana", &["finance"], A, "h", 0);
        assert_eq!(rule.tally(std::slice::from_ref(&ana), "h").outcome, None);
        assert!(matches!(
            rule.check("k", std::slice::from_ref(&ana), &ana),
            Err(Refusal::AlreadyReviewed(_))
        ));
        let bo = vote("bo", &["finance"], A, "h", 1);
        assert_eq!(rule.check("k", std::slice::from_ref(&ana), &bo), Ok(()));
        assert_eq!(rule.tally(&[ana, bo], "h").outcome, Some(Status::Approved));
    }

    #[test]
    fn all_of_two_groups_and_eligibility() {
        let rule = ReviewRule {
            requester: "agent".into(),
            requirements: vec![req(&["finance"], 1), req(&["legal"], 1)],
        };
        let ana = vote("ana", &["finance"], A, "h", 0);
        let eve = vote("eve", &["marketing"], A, "h", 0);
        assert!(matches!(
            rule.check("k", &[], &eve),
            Err(Refusal::NotEligible(_))
        ));
        let tally = rule.tally(std::slice::from_ref(&ana), "h");
        assert_eq!(
            (
                tally.outcome,
                tally.requirements[0].met,
                tally.requirements[1].met
            ),
            (None, true, false)
        );
        let lee = vote("lee", &["legal"], A, "h", 0);
        assert_eq!(
            rule.tally(&[ana.clone(), lee], "h").outcome,
            Some(Status::Approved)
        );
        // One reject by an eligible reviewer rejects at once.
        let no = vote("lee", &["legal"], ReviewChoice::Reject, "h", 0);
        assert_eq!(rule.tally(&[ana, no], "h").outcome, Some(Status::Rejected));
    }

    #[test]
    fn requester_never_reviews_and_escalation_widens_in_time() {
        let mut r = req(&["finance"], 1);
        r.escalate_to = Some("finance-leads".into());
        r.escalate_at = Some("1970-01-01T00:00:10Z".into());
        let rule = ReviewRule {
            requester: "ana".into(),
            requirements: vec![r],
        };
        let own = vote("ana", &["finance"], A, "h", 0);
        assert_eq!(rule.check("k", &[], &own), Err(Refusal::SelfReview));
        let by_key = Vote {
            key: "k".into(),
            ..vote("bo", &["finance"], A, "h", 0)
        };
        assert_eq!(rule.check("k", &[], &by_key), Err(Refusal::SelfReview));
        let lead_early = vote("lu", &["finance-leads"], A, "h", 9_999);
        assert!(matches!(
            rule.check("k", &[], &lead_early),
            Err(Refusal::NotEligible(_))
        ));
        let lead = vote("lu", &["finance-leads"], A, "h", 10_000);
        assert_eq!(rule.check("k", &[], &lead), Ok(()));
        assert_eq!(rule.tally(&[lead], "h").outcome, Some(Status::Approved));
        assert_eq!(rule.next_escalation_after(0), Some(10_000));
        assert_eq!(rule.next_escalation_after(10_000), None);
    }

    #[test]
    fn an_amendment_restarts_the_count() {
        let rule = ReviewRule {
            requester: "agent".into(),
            requirements: vec![req(&["finance"], 2)],
        };
        let ana = vote("ana", &["finance"], A, "original", 0);
        let bo_amends = vote("bo", &["finance"], A, "amended", 1);
        let tally = rule.tally(&[ana.clone(), bo_amends.clone()], "original");
        assert_eq!(
            (tally.outcome, tally.current_action_hash.as_str()),
            (None, "amended")
        );
        // ana may approve the amended action; that meets the quorum.
        let ana_again = vote("ana", &["finance"], A, "amended", 2);
        assert_eq!(
            rule.check("k", &[ana.clone(), bo_amends.clone()], &ana_again),
            Ok(())
        );
        assert_eq!(
            rule.tally(&[ana, bo_amends, ana_again], "original").outcome,
            Some(Status::Approved)
        );
    }
}
