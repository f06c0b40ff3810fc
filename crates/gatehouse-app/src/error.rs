//! What a use case can refuse or fail with. Adapters map these to their
//! own surface (HTTP statuses, CLI exit codes, MCP errors) in one place
//! each; the messages are for people and never carry internal details,
//! except [`AppError::Internal`], whose cause adapters log but never show.

use gatehouse_store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The input is well-formed but breaks a rule (a limit, a required field).
    #[error("{0}")]
    Validation(String),
    /// The request does not fit the policy schema (e.g. a float where the
    /// schema says Long).
    #[error("{0}")]
    SchemaMismatch(String),
    /// An argument outside what the operation accepts (a proof range, a
    /// filter value).
    #[error("{0}")]
    InvalidArgument(String),
    /// A `callback_url` this server will not call (not on the allowlist,
    /// an address inside its networks, not http(s)).
    #[error("{0}")]
    CallbackNotAllowed(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    /// A hook call without a valid secret or signature, or for a hook that
    /// does not exist or was revoked (alike, so hooks cannot be probed).
    #[error("missing or invalid hook secret or signature (X-Gatehouse-Hook-Secret or X-Gatehouse-Signature)")]
    HookUnauthorized,
    /// A hook asked for a workflow or action outside its scope.
    #[error("{0}")]
    OutOfScope(String),
    #[error("this API key's role ({role}) may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error("a key may not review a request it created, or one created by a key of the same principal (a key it minted, or the key that minted it)")]
    SelfReview,
    /// The reviewer is not in a group the decision's requirements allow
    /// (yet: an escalation may widen them later).
    #[error("{0}")]
    NotEligible(String),
    /// This person already reviewed the decision (with any key, in any
    /// channel); one person counts once.
    #[error("{0}")]
    AlreadyReviewed(String),
    /// An amended action the decision's policies would reject; nothing
    /// was recorded.
    #[error("the amended action is rejected by policy: {}", reasons_text(.0))]
    AmendmentRejected(Vec<gatehouse_core::Reason>),
    /// A record with this name exists already (a user).
    #[error("{0}")]
    AlreadyExists(String),
    #[error("this is the last active admin key; create another admin key before revoking it")]
    LastAdmin,
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{0}")]
    NotPending(String),
    /// An approval token failed a check; the message names which.
    #[error("approval token rejected: {0}")]
    TokenRejected(String),
    #[error("this approval token was already redeemed")]
    TokenAlreadyRedeemed,
    /// An execution that is not bound to the authorised action; the
    /// decision has been flagged for owner review.
    #[error("execution refused: {0}; the decision is flagged for owner review")]
    ExecutionRefused(String),
    /// The stored decision claims a state its log entries do not support
    /// (a row edited behind the server's back); it has been flagged.
    #[error("{0}; nothing was approved and the decision is flagged for owner review")]
    EvidenceMismatch(String),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    #[error("rate limit exceeded; retry after {0} s")]
    RateLimited(u64),
    /// Storage cannot be used right now; nothing was stored or approved
    /// and the caller may retry. The cause is for logs; callers never see it.
    #[error("storage is unavailable right now; nothing was approved; retry shortly")]
    Unavailable(String),
    /// Anything unexpected. The cause is for logs; callers are told only
    /// that nothing was approved.
    #[error("internal error: {0}")]
    Internal(String),
}

pub type AppResult<T> = Result<T, AppError>;

impl From<gatehouse_core::review_rule::Refusal> for AppError {
    fn from(r: gatehouse_core::review_rule::Refusal) -> Self {
        use gatehouse_core::review_rule::Refusal;
        match r {
            Refusal::SelfReview => AppError::SelfReview,
            Refusal::NotEligible(m) => AppError::NotEligible(m),
            Refusal::AlreadyReviewed(m) => AppError::AlreadyReviewed(m),
        }
    }
}

fn reasons_text(reasons: &[gatehouse_core::Reason]) -> String {
    reasons
        .iter()
        .map(|r| r.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

impl AppError {
    /// The stable code callers match on (`error.code` in the API's bodies,
    /// and in MCP tool errors). One table, so every adapter names a failure
    /// alike; each adapter maps it to its own status.
    pub fn code(&self) -> &'static str {
        match self {
            AppError::Validation(_) => "validation_failed",
            AppError::SchemaMismatch(_) => "schema_mismatch",
            AppError::InvalidArgument(_) => "bad_request",
            AppError::CallbackNotAllowed(_) => "callback_not_allowed",
            AppError::Unauthorized | AppError::HookUnauthorized => "unauthorized",
            AppError::OutOfScope(_) => "out_of_scope",
            AppError::Forbidden { .. } => "forbidden",
            AppError::SelfReview => "self_review_forbidden",
            AppError::LastAdmin => "last_admin",
            AppError::NotEligible(_) => "not_eligible",
            AppError::AlreadyReviewed(_) => "already_reviewed",
            AppError::AmendmentRejected(_) => "amendment_rejected",
            AppError::AlreadyExists(_) => "already_exists",
            AppError::NotFound(_) => "not_found",
            AppError::NotPending(_) => "not_pending",
            AppError::IdempotencyConflict => "idempotency_conflict",
            AppError::EvidenceMismatch(_) => "evidence_mismatch",
            AppError::TokenRejected(_) => "token_rejected",
            AppError::TokenAlreadyRedeemed => "token_already_redeemed",
            AppError::ExecutionRefused(_) => "execution_refused",
            AppError::RateLimited(_) => "rate_limited",
            AppError::Unavailable(_) => "unavailable",
            AppError::Internal(_) => "internal",
        }
    }

    /// The message a caller may see: internal causes are replaced, since
    /// they are for logs only.
    pub fn public_message(&self) -> String {
        match self {
            AppError::Internal(_) => "internal error; the request was not approved".to_string(),
            other => other.to_string(),
        }
    }

    pub(crate) fn internal(cause: impl std::fmt::Display) -> AppError {
        AppError::Internal(cause.to_string())
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound("decision"),
            StoreError::AlreadyRedeemed => AppError::TokenAlreadyRedeemed,
            StoreError::LastAdmin => AppError::LastAdmin,
            StoreError::NotPending(status) => {
                AppError::NotPending(format!("decision is {status}, not pending_review"))
            }
            StoreError::Unavailable(cause) => AppError::Unavailable(cause),
            StoreError::ReviewRefused(refusal) => refusal.into(),
            other => AppError::Internal(other.to_string()),
        }
    }
}
