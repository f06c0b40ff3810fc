//! The one mapping from failures to HTTP responses. Every error body is
//! `{"error": {"code", "message"}}`; codes are stable, messages are for
//! people, and internal details are logged, never returned.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_app::throttle::Throttle;
use gatehouse_app::AppError;
use serde_json::json;

/// Seconds a client is asked to wait after a storage outage (503).
const RETRY_OUTAGE: &str = "5";

/// Failures are logged once per interval with a count of the repeats: an
/// outage under load fails every request the same way.
fn failures() -> &'static Throttle {
    static FAILURES: std::sync::OnceLock<Throttle> = std::sync::OnceLock::new();
    FAILURES.get_or_init(|| Throttle::new(std::time::Duration::from_secs(10)))
}

/// A use case's refusal, or a request the HTTP layer could not even read.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    App(#[from] AppError),
    #[error("{0}")]
    InvalidJson(String),
    #[error("{0}")]
    BadRequest(String),
    /// A key repeated within one JSON object, named by its path.
    #[error(
        "the key {0} appears twice in one object; JSON objects must have unique keys (RFC 7493)"
    )]
    DuplicateKey(String),
    #[error("the request target is longer than the server accepts ({0} bytes at most)")]
    UriTooLong(usize),
    #[error("the request headers are larger than the server accepts ({0})")]
    HeadersTooLarge(&'static str),
    #[error("the request body did not arrive in time")]
    BodyTimeout,
    #[error("request body is larger than the server accepts")]
    PayloadTooLarge,
    #[error("Content-Type must be application/json")]
    UnsupportedMediaType,
    #[error("this method is not allowed on this path")]
    MethodNotAllowed,
    #[error("no such route")]
    RouteNotFound,
}

impl From<gatehouse_store::StoreError> for ApiError {
    fn from(e: gatehouse_store::StoreError) -> Self {
        ApiError::App(e.into())
    }
}

impl ApiError {
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::App(e) => {
                let status = match e {
                    AppError::Validation(_) | AppError::AmendmentRejected(_) => {
                        StatusCode::UNPROCESSABLE_ENTITY
                    }
                    AppError::SchemaMismatch(_)
                    | AppError::InvalidArgument(_)
                    | AppError::CallbackNotAllowed(_)
                    | AppError::TokenRejected(_) => StatusCode::BAD_REQUEST,
                    AppError::Unauthorized | AppError::HookUnauthorized => StatusCode::UNAUTHORIZED,
                    AppError::OutOfScope(_)
                    | AppError::Forbidden { .. }
                    | AppError::SelfReview
                    | AppError::NotEligible(_) => StatusCode::FORBIDDEN,
                    AppError::LastAdmin
                    | AppError::AlreadyReviewed(_)
                    | AppError::AlreadyExists(_)
                    | AppError::NotPending(_)
                    | AppError::IdempotencyConflict
                    | AppError::EvidenceMismatch(_)
                    | AppError::TokenAlreadyRedeemed
                    | AppError::ExecutionRefused(_) => StatusCode::CONFLICT,
                    AppError::NotFound(_) => StatusCode::NOT_FOUND,
                    AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
                    AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
                    AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (status, e.code())
            }
            ApiError::InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            ApiError::DuplicateKey(_) => (StatusCode::BAD_REQUEST, "duplicate_key"),
            ApiError::PayloadTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            ApiError::UriTooLong(_) => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            ApiError::HeadersTooLarge(_) => (
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "headers_too_large",
            ),
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            ApiError::RouteNotFound => (StatusCode::NOT_FOUND, "not_found"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            ApiError::App(AppError::Internal(cause)) => {
                if let Some(repeats) = failures().admit(cause) {
                    tracing::error!(%cause, repeats, "request failed");
                }
                "internal error; the request was not approved".to_string()
            }
            ApiError::App(AppError::Unavailable(cause)) => {
                if let Some(repeats) = failures().admit(cause) {
                    tracing::warn!(%cause, repeats, "storage unavailable; answered 503");
                }
                self.to_string()
            }
            other => other.to_string(),
        };
        let mut error = json!({"code": code, "message": message});
        if let ApiError::App(AppError::AmendmentRejected(reasons)) = &self {
            error["reasons"] = json!(reasons);
        }
        if let Some(id) = crate::observe::current_request_id() {
            error["request_id"] = id.into();
        }
        let mut response = (status, Json(json!({ "error": error }))).into_response();
        if let ApiError::BodyTimeout = self {
            // The rest of the body may still be on its way; the connection
            // cannot carry another request.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        if let ApiError::App(AppError::Unavailable(_)) = self {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_OUTAGE));
        }
        if let ApiError::App(AppError::RateLimited(secs)) = self {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}
