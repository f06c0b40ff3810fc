//! The one error shape every endpoint answers with, and the response sets
//! the OpenAPI document lists for each route.

use serde::{Deserialize, Serialize};
use utoipa::{IntoResponses, ToSchema};

/// `{"error": {"code", "message"}}`: `code` is stable and meant for
/// programs, `message` is for people.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of: `invalid_json`, `schema_mismatch`, `bad_request`,
    /// `unauthorized`, `forbidden`, `self_review_forbidden`, `not_found`,
    /// `method_not_allowed`, `not_pending`, `idempotency_conflict`,
    /// `token_already_redeemed`, `execution_refused`, `evidence_mismatch`,
    /// `last_admin`, `duplicate_key`, `request_timeout`,
    /// `payload_too_large`, `uri_too_long`, `unsupported_media_type`,
    /// `headers_too_large`, `validation_failed`, `token_rejected`,
    /// `rate_limited`, `unavailable`, `too_many_connections`,
    /// `already_exists`, `not_eligible`, `already_reviewed`,
    /// `amendment_rejected`, `callback_not_allowed`, `internal`.
    pub code: String,
    pub message: String,
    /// With `amendment_rejected`: the policy reasons that reject the
    /// amended action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasons: Option<Vec<gatehouse_core::Reason>>,
    /// The id of the request, also on every server log line about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Errors any authenticated route can answer.
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// `unauthorized`: no API key, or one that is unknown or revoked.
    #[response(status = 401)]
    Unauthorized(ErrorBody),
    /// `forbidden`: the key's role may not do this (or, redeeming a token,
    /// the key is neither the one that asked nor the audience's executor).
    #[response(status = 403)]
    Forbidden(ErrorBody),
    /// `rate_limited`: the key's request budget is spent; see `Retry-After`.
    #[response(status = 429, headers(("Retry-After" = u64, description = "seconds to wait")))]
    RateLimited(ErrorBody),
}

/// Errors any route can answer.
#[derive(IntoResponses)]
pub enum ServerErrors {
    /// `internal`: something failed; nothing was approved.
    #[response(status = 500)]
    Internal(ErrorBody),
    /// `unavailable`: storage cannot be used right now (unreachable, full,
    /// read-only, locked), or `too_many_connections`; nothing was
    /// approved; retry after `Retry-After` seconds.
    #[response(status = 503, headers(("Retry-After" = u64, description = "seconds to wait")))]
    Unavailable(ErrorBody),
}

/// Errors of routes that take a JSON body.
#[derive(IntoResponses)]
pub enum BodyErrors {
    /// `invalid_json` (not JSON), `duplicate_key` (a key repeated within
    /// one object, at any depth), `schema_mismatch` (does not fit the
    /// policy schema), `callback_not_allowed` (a `callback_url` whose host
    /// is not on the server's callback allowlist, or an address inside its
    /// networks) or `bad_request` (e.g. conflicting idempotency keys).
    #[response(status = 400)]
    BadRequest(ErrorBody),
    /// `payload_too_large`: the body is over the server's limit.
    #[response(status = 413)]
    TooLarge(ErrorBody),
    /// `unsupported_media_type`: Content-Type is not application/json.
    #[response(status = 415)]
    MediaType(ErrorBody),
    /// `validation_failed`: a field is missing, unknown, or breaks a limit.
    #[response(status = 422)]
    Invalid(ErrorBody),
}

/// `not_found`: no such decision (or key), or one the caller may not read.
#[derive(IntoResponses)]
#[response(status = 404)]
pub struct NotFound(pub ErrorBody);

/// `evidence_mismatch`: the stored decision claims a state its log
/// entries do not support (a row edited behind the server's back);
/// nothing was approved and the decision is flagged.
#[derive(IntoResponses)]
#[response(status = 409)]
pub struct EvidenceMismatch(pub ErrorBody);

/// `already_exists`: a user with this name exists.
#[derive(IntoResponses)]
#[response(status = 409)]
pub struct AlreadyExists(pub ErrorBody);

/// `last_admin`: revoking this key would leave no active admin key.
#[derive(IntoResponses)]
#[response(status = 409)]
pub struct LastAdmin(pub ErrorBody);

/// `bad_request`: a query parameter is missing or out of range.
#[derive(IntoResponses)]
#[response(status = 400)]
pub struct BadQuery(pub ErrorBody);
