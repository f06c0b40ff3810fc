//! What operators see of each request: a request id (taken from a valid
//! `x-request-id` or made here) on every log line about the request, in
//! the `x-request-id` response header and in every error body; and the
//! HTTP metrics (requests and latency by route and status).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use gatehouse_app::telemetry::intern;
use tracing::Instrument;

const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being answered, if any (for error bodies).
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A caller's id is kept only if it is short and plain, so it cannot forge
/// log lines or headers.
fn accepted(id: &str) -> bool {
    (1..=128).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
}

pub async fn observe(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| accepted(v))
        .map(str::to_string)
        .unwrap_or_else(|| ulid::Ulid::new().to_string());
    // The route's template, never the raw path: ids would make every
    // request a metric series of its own.
    let route = intern(
        request
            .extensions()
            .get::<MatchedPath>()
            .map_or("unmatched", |p| p.as_str()),
    );
    // Extension methods are the caller's to invent: one label for them all.
    let method = match request.method().as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "DELETE" => "DELETE",
        "PATCH" => "PATCH",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    };
    // Only the id: the span's fields are formatted for every request.
    let span = tracing::info_span!("request", request_id = %id);
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let took = started.elapsed();
    let status = intern(response.status().as_str());
    span.in_scope(|| {
        tracing::debug!(
            method,
            route,
            status,
            micros = took.as_micros() as u64,
            "answered"
        );
    });
    metrics::counter!(
        "gatehouse_http_requests_total",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .increment(1);
    metrics::histogram!(
        "gatehouse_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => status
    )
    .record(took.as_secs_f64());
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, v);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::accepted;

    #[test]
    fn only_plain_short_ids_are_taken_from_callers() {
        assert!(accepted("01JD8ZJ6N2K5M3P0Q1R2S3T4V5"));
        assert!(accepted("trace-1.2:3_x"));
        assert!(!accepted(""));
        assert!(!accepted("line\nbreak"));
        assert!(!accepted("with space"));
        assert!(!accepted(&"x".repeat(129)));
    }
}
