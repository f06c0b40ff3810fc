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

/// What Gatehouse knows about one policy besides its Cedar text.
#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub file: String,
    pub review_tier: bool,
    pub reason: String,
    pub code: String,
    pub review_timeout: Option<Duration>,
    pub token_ttl: Option<Duration>,
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
        text: policy.to_string(),
    };
    (id, meta)
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
