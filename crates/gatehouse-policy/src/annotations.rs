//! The annotations Gatehouse reads on Cedar policies.

use std::time::Duration;

pub const ID: &str = "id";
pub const TIER: &str = "tier";
pub const REASON: &str = "reason";
pub const CODE: &str = "code";
pub const REVIEW_TIMEOUT: &str = "review_timeout";
pub const TOKEN_TTL: &str = "token_ttl";

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
