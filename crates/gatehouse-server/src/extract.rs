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
        if !readable_as_sent(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(rejection) => Err(map_json_rejection(rejection)),
        }
    }
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
