//! Extractors whose rejections use our error format: a JSON body and a
//! typed query string.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use gatehouse_app::AppError;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// A JSON body's bytes, checked as [`ApiJson`] checks them (media type,
/// encoding, deadline, size, NUL, duplicate keys) but not yet parsed: for
/// handlers that need the exact bytes too (a hook's body signature).
pub struct JsonBytes(pub axum::body::Bytes);

impl<S> FromRequest<S> for JsonBytes
where
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        if !readable_as_sent(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        if !declares_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let deadline = req.extensions().get::<BodyDeadline>().map(|d| d.0);
        let read = axum::body::Bytes::from_request(req, state);
        let read = match deadline {
            Some(at) => tokio::time::timeout_at(at, read)
                .await
                .map_err(|_| ApiError::BodyTimeout)?,
            None => read.await,
        };
        let bytes = read.map_err(|e| map_json_rejection(JsonRejection::BytesRejection(e)))?;
        if escapes_nul(&bytes) {
            return Err(ApiError::BadRequest(NUL_REFUSED.into()));
        }
        if let Some(path) = crate::duplicates::first_duplicate(&bytes) {
            return Err(ApiError::DuplicateKey(path));
        }
        Ok(JsonBytes(bytes))
    }
}

/// Parses checked JSON bytes into `T`, with [`ApiJson`]'s errors.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    match axum::Json::<T>::from_bytes(bytes) {
        Ok(axum::Json(v)) => Ok(v),
        Err(rejection) => Err(map_json_rejection(rejection)),
    }
}

/// `Content-Type: application/json` or another `…+json` type, as axum's own
/// JSON extractor requires (the body is read here first, for the NUL check).
fn declares_json(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            let essence = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            essence == "application/json"
                || (essence.starts_with("application/") && essence.ends_with("+json"))
        })
        .unwrap_or(false)
}

/// Bodies are read as they arrive, as UTF-8: a declared charset other than
/// UTF-8, or any content encoding (gzip, …), would otherwise be parsed as
/// something it is not, so both are refused (415) rather than guessed at.
fn readable_as_sent(headers: &axum::http::HeaderMap) -> bool {
    use axum::http::header::{CONTENT_ENCODING, CONTENT_TYPE};
    let charset_ok = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|ct| {
            ct.split(';').skip(1).all(|param| {
                let (key, value) = param.split_once('=').unwrap_or((param, ""));
                !key.trim().eq_ignore_ascii_case("charset")
                    || matches!(
                        value.trim().trim_matches('"').to_ascii_lowercase().as_str(),
                        "utf-8" | "utf8"
                    )
            })
        })
        .unwrap_or(true);
    let encoding_ok = headers.get_all(CONTENT_ENCODING).iter().all(|v| {
        v.to_str()
            .is_ok_and(|e| e.trim().eq_ignore_ascii_case("identity"))
    });
    charset_ok && encoding_ok
}

fn map_json_rejection(rejection: JsonRejection) -> ApiError {
    match rejection {
        JsonRejection::JsonDataError(e) => AppError::Validation(e.body_text()).into(),
        JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            ApiError::PayloadTooLarge
        }
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// A query string parsed into `T`; a malformed or unknown parameter is a
/// 400 `bad_request` naming it.
pub struct ApiQuery<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(ApiQuery(v)),
            Err(QueryRejection::FailedToDeserializeQueryString(e)) => Err(ApiError::BadRequest(
                e.body_text()
                    .replace("Failed to deserialize query string: ", "query string: "),
            )),
            Err(other) => Err(ApiError::BadRequest(other.body_text())),
        }
    }
}

/// Path parameters parsed into `T`; a path that does not decode (e.g.
/// percent-encoded bytes that are not UTF-8) is a 400 `bad_request`.
pub struct ApiPath<T>(pub T);

impl<S, T> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(ApiPath(v)),
            Err(e) => Err(ApiError::BadRequest(format!("path: {}", e.body_text()))),
        }
    }
}

/// When the body of the request must have arrived in full.
#[derive(Clone, Copy)]
pub struct BodyDeadline(pub tokio::time::Instant);

/// Gives every request a [`BodyDeadline`] counted from now, when its
/// headers have arrived: a client trickling its body a byte at a time
/// cannot hold a connection and a task for longer than that.
pub async fn body_deadline(
    axum::extract::State(timeout): axum::extract::State<std::time::Duration>,
    mut req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    req.extensions_mut()
        .insert(BodyDeadline(tokio::time::Instant::now() + timeout));
    next.run(req).await
}

/// Longest request target (path and query) accepted.
pub const MAX_URI: usize = 8 * 1024;
/// Most header fields, and most bytes of them, accepted in one request.
pub const MAX_HEADERS: usize = 64;
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// Refuses a request whose target is too long (414), whose headers are too
/// many or too large (431), or whose path or query string encodes a NUL
/// character (`%00`), before any handler or store sees it. The HTTP layer
/// itself accepts far larger heads (see `crate::listen`), so these answers
/// carry the API's error body.
pub async fn refuse_unfit_head(
    req: Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let uri = req.uri();
    let target = uri.path_and_query().map_or(0, |pq| pq.as_str().len());
    if target > MAX_URI {
        return ApiError::UriTooLong(MAX_URI).into_response();
    }
    let headers = req.headers();
    if headers.len() > MAX_HEADERS {
        return ApiError::HeadersTooLarge("more than 64 fields").into_response();
    }
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    if bytes > MAX_HEADER_BYTES {
        return ApiError::HeadersTooLarge("more than 32 KiB").into_response();
    }
    let encoded_nul = uri.path().contains("%00") || uri.query().is_some_and(|q| q.contains("%00"));
    if encoded_nul {
        return ApiError::BadRequest(NUL_REFUSED.into()).into_response();
    }
    next.run(req).await
}

/// Why text with a NUL character is refused: PostgreSQL cannot store it, so
/// both stores refuse it alike, before it reaches either.
pub const NUL_REFUSED: &str = "text must not contain the NUL character (\\u0000)";

/// Whether a JSON text holds a NUL character: JSON can only carry one as
/// the escape `\u0000` (a raw NUL byte is not valid JSON and is refused by
/// the parser), and a backslash before it may itself be escaped.
pub fn escapes_nul(json: &[u8]) -> bool {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'\\' {
            if json.len() >= i + 6
                && json[i + 1] == b'u'
                && json[i + 2..i + 6].iter().all(|&b| b == b'0')
            {
                return true;
            }
            // Skip the escaped character, whatever it is.
            i += 2;
        } else {
            i += 1;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::escapes_nul;

    #[test]
    fn nul_escapes_are_found_and_escaped_backslashes_are_not() {
        assert!(escapes_nul(br#"{"a":"x\u0000"}"#));
        assert!(escapes_nul(br#"{"a\u0000":1}"#));
        assert!(escapes_nul(br#"{"a":"\\\u0000"}"#));
        assert!(!escapes_nul(br#"{"a":"\\u0000"}"#));
        assert!(!escapes_nul(br#"{"a":"\u0001 u0000"}"#));
        assert!(!escapes_nul(br#"{"a":"\\"}"#));
    }
}
