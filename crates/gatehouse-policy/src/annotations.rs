//! The annotations Gatehouse reads on Cedar policies, read once per policy
//! at load time.

use std::time::Duration;

use cedar_policy::Policy;

pub const ID: &str = "id";
pub const TIER: &str = "tier";
pub const REASON: &str = "reason";
pub const CODE: &str = "code";
pub const REVIEW_TIMEOUT: &str = "review_timeout";
pub const TOKEN_TTL: &str = "token_ttl";
pub const REVIEWERS: &str = "reviewers";
pub const QUORUM: &str = "quorum";
pub const ESCALATE_AFTER: &str = "escalate_after";
pub const ESCALATE_TO: &str = "escalate_to";

/// The most approvals a policy may require.
const MAX_QUORUM: u32 = 100;

/// Who a review policy sends its requests to: `@reviewers`, `@quorum`,
/// `@escalate_after` and `@escalate_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewRoute {
    pub policy_id: String,
    /// Empty: the request's owner group if it names one, else anyone.
    pub groups: Vec<String>,
    pub quorum: u32,
    pub escalate_after: Option<Duration>,
    pub escalate_to: Option<String>,
}

/// What Gatehouse knows about one policy besides its Cedar text.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub file: String,
    pub review_tier: bool,
    pub reason: String,
    pub code: String,
    pub review_timeout: Option<Duration>,
    pub token_ttl: Option<Duration>,
    /// For review-tier policies: who reviews what they send to review.
    pub route: Option<ReviewRoute>,
    pub text: String,
}

/// Reads the annotations of the `n`-th policy of `file`: its id (from
/// `@id`, or the file and position) and its metadata, naming every
/// annotation that is invalid in `problems`.
pub(crate) fn read(
    policy: &Policy,
    file: &str,
    n: usize,
    problems: &mut Vec<String>,
) -> (String, PolicyMeta) {
    let id = policy
        .annotation(ID)
        .map(str::to_string)
        .unwrap_or_else(|| format!("{file}#{n}"));
    let mut problem = |what: String| problems.push(format!("{file}: policy {id}: {what}"));
    let review_tier = match policy.annotation(TIER) {
        None | Some("decide") => false,
        Some("review") => true,
        Some(other) => {
            problem(format!(
                "unknown @tier({other:?}); use \"review\" or leave it out"
            ));
            false
        }
    };
    if review_tier && policy.effect() == cedar_policy::Effect::Permit {
        problem(
            "a permit in the review tier has no effect; only forbids send requests to review"
                .into(),
        );
    }
    let mut duration = |key: &str, example: &str| {
        let raw = policy.annotation(key)?;
        let parsed = parse_duration(raw);
        if parsed.is_none() {
            problem(format!("@{key}({raw:?}) is not a duration like {example}"));
        }
        parsed
    };
    let review_timeout = duration(REVIEW_TIMEOUT, "30m, 2h or 7d");
    let token_ttl = duration(TOKEN_TTL, "5m or 1h");
    let escalate_after = duration(ESCALATE_AFTER, "30m or 2h");
    let route = review_route(policy, &id, review_tier, escalate_after, &mut problem);
    let meta = PolicyMeta {
        file: file.to_string(),
        review_tier,
        reason: policy
            .annotation(REASON)
            .map(str::to_string)
            .unwrap_or_else(|| format!("policy {id} matched")),
        code: policy
            .annotation(CODE)
            .map(str::to_string)
            .unwrap_or_else(|| code_from_id(&id)),
        review_timeout,
        token_ttl,
        route,
        text: policy.to_string(),
    };
    (id, meta)
}

/// Whether `name` can be a group: letters, digits, `.`, `_`, `-`, starting
/// with a letter or digit, at most 64 characters (the rule user groups
/// follow too).
pub fn valid_group(name: &str) -> bool {
    name.chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().count() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

/// Reads the routing annotations of a review-tier policy.
fn review_route(
    policy: &Policy,
    id: &str,
    review_tier: bool,
    escalate_after: Option<Duration>,
    problem: &mut impl FnMut(String),
) -> Option<ReviewRoute> {
    let reviewers = policy.annotation(REVIEWERS);
    let quorum = policy.annotation(QUORUM);
    let escalate_to = policy.annotation(ESCALATE_TO);
    let any = reviewers.is_some() || quorum.is_some() || escalate_to.is_some();
    if !review_tier {
        if any || policy.annotation(ESCALATE_AFTER).is_some() {
            problem(
                "@reviewers, @quorum and @escalate_* apply only to @tier(\"review\") policies"
                    .into(),
            );
        }
        return None;
    }
    let groups: Vec<String> = match reviewers {
        None => Vec::new(),
        Some(raw) => {
            let groups: Vec<String> = raw.split(',').map(|g| g.trim().to_string()).collect();
            if let Some(bad) = groups.iter().find(|g| !valid_group(g)) {
                problem(format!(
                    "@reviewers({raw:?}): {bad:?} is not a group name (letters, digits, '.', '_', '-'; several separated by commas)"
                ));
            }
            groups
        }
    };
    let quorum = match quorum {
        None => 1,
        Some(raw) => match raw.trim().parse::<u32>() {
            Ok(n) if (1..=MAX_QUORUM).contains(&n) => n,
            _ => {
                problem(format!(
                    "@quorum({raw:?}) must be a whole number from 1 to {MAX_QUORUM}"
                ));
                1
            }
        },
    };
    let escalate_to = escalate_to.map(str::to_string);
    if let Some(g) = &escalate_to {
        if !valid_group(g) {
            problem(format!("@escalate_to({g:?}) is not a group name"));
        }
    }
    let raw_after = policy.annotation(ESCALATE_AFTER);
    if escalate_to.is_some() != raw_after.is_some() {
        problem("@escalate_after and @escalate_to go together: when, and to whom".into());
    }
    if escalate_to.is_some() && groups.is_empty() {
        problem("@escalate_to needs @reviewers: without it anyone may review already".into());
    }
    Some(ReviewRoute {
        policy_id: id.to_string(),
        groups,
        quorum,
        escalate_after,
        escalate_to,
    })
}

/// Parses durations such as `90s`, `30m`, `2h`, `7d`.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n.checked_mul(60)?,
        "h" => n.checked_mul(3600)?,
        "d" => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs > 0).then(|| Duration::from_secs(secs))
}

/// A stable evidence code derived from a policy id: `refund-over-100` →
/// `REFUND_OVER_100`.
pub fn code_from_id(id: &str) -> String {
    id.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Some(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("0h"), None);
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("5w"), None);
    }

    #[test]
    fn codes() {
        assert_eq!(code_from_id("refund-over-100"), "REFUND_OVER_100");
    }
}
