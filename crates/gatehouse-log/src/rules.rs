//! The one rule set: whether a redemption or an execution receipt may
//! follow what the log already says about a decision. The server asks
//! these functions before it writes; the verifiers (`log verify`, a
//! Decision Packet's checks) ask them again of every logged entry, so the
//! two can never disagree.

use crate::state::{unix, DecisionState};

/// Why a redemption of token `jti` at `at` (Unix seconds) may not follow,
/// or `None` when it may.
pub fn redemption_refusal(s: &DecisionState, jti: &str, at: Option<i64>) -> Option<String> {
    if !s.status.permits_action() {
        return Some(format!(
            "decision {} is {}",
            s.decision_id,
            s.status.as_str()
        ));
    }
    let Some(token) = &s.token else {
        return Some("no approval token was issued for the decision".into());
    };
    if token.item.jti != jti {
        return Some("this is not the token issued for the decision".into());
    }
    if s.redemptions.iter().any(|r| r.item.jti == jti) {
        return Some(REDEEMED.into());
    }
    match (at, unix(&token.item.exp)) {
        (Some(at), Some(exp)) if at < exp => None,
        _ => Some(format!("the token expired at {}", token.item.exp)),
    }
}

/// The refusal [`redemption_refusal`] gives for a second redemption.
pub const REDEEMED: &str = "the token was already redeemed";

/// Why a receipt for an action whose hash is `action_hash`, naming token
/// `token_jti` if any, reported at `at` (Unix seconds), may not follow, or
/// `None` when it may. A receipt after the approval token expired is
/// refused whether or not it names the token.
pub fn receipt_refusal(
    s: &DecisionState,
    action_hash: &str,
    token_jti: Option<&str>,
    at: Option<i64>,
) -> Option<String> {
    if !s.status.permits_action() {
        return Some(format!(
            "the decision is {}, so no action was authorised",
            s.status.as_str()
        ));
    }
    if action_hash != s.approved_action_hash {
        return Some(format!(
            "the executed action ({action_hash}) is not the approved one ({})",
            s.approved_action_hash
        ));
    }
    let issued = s.token.as_ref().map(|t| &t.item);
    if let Some(jti) = token_jti {
        if issued.map(|t| t.jti.as_str()) != Some(jti) {
            return Some(format!("token {jti} was not issued for this decision"));
        }
    }
    if let Some(token) = issued {
        let in_time = matches!((at, unix(&token.exp)), (Some(at), Some(exp)) if at <= exp);
        if !in_time {
            return Some(format!(
                "the receipt comes after the approval token expired at {}",
                token.exp
            ));
        }
    }
    None
}
