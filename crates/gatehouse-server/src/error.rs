//! The one mapping from failures to HTTP responses. Every error body is
//! `{"error": {"code", "message"}}`; codes are stable, messages are for
//! people, and internal details are logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_store::StoreError;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    SchemaMismatch(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("missing or invalid API key")]
    Unauthorized,
    #[error("this API key's role ({role}) may not {action}")]
    Forbidden {
        role: &'static str,
        action: &'static str,
    },
    #[error("a key may not review a request it created")]
    SelfReview,
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
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyConflict,
    #[error("request body is larger than the server accepts")]
    PayloadTooLarge,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("rate limit exceeded; retry after {0} s")]
    RateLimited(u64),
    #[error("the service is not ready")]
    Unavailable,
    /// Anything unexpected. The cause is logged; the caller is told only
    /// that nothing was approved.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::Validation(_) => (StatusCode::UNPROCESSABLE_ENTITY, "validation_failed"),
            ApiError::SchemaMismatch(_) => (StatusCode::BAD_REQUEST, "schema_mismatch"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized"),
            ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "forbidden"),
            ApiError::SelfReview => (StatusCode::FORBIDDEN, "self_review_forbidden"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            ApiError::NotPending(_) => (StatusCode::CONFLICT, "not_pending"),
            ApiError::IdempotencyConflict => (StatusCode::CONFLICT, "idempotency_conflict"),
            ApiError::TokenRejected(_) => (StatusCode::BAD_REQUEST, "token_rejected"),
            ApiError::TokenAlreadyRedeemed => (StatusCode::CONFLICT, "token_already_redeemed"),
            ApiError::ExecutionRefused(_) => (StatusCode::CONFLICT, "execution_refused"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => ApiError::NotFound("decision"),
            StoreError::AlreadyRedeemed => ApiError::TokenAlreadyRedeemed,
            StoreError::NotPending(status) => {
                ApiError::NotPending(format!("decision is {status}, not pending_review"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(%cause, "request failed");
                "internal error; the request was not approved".to_string()
            }
            other => other.to_string(),
        };
        let mut response = (
            status,
            Json(json!({"error": {"code": code, "message": message}})),
        )
            .into_response();
        if let ApiError::RateLimited(secs) = self {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
