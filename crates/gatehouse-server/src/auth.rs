//! The caller of a request: the API key from `Authorization: Bearer` or
//! `x-api-key`, authenticated and rate limited by the application.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use gatehouse_app::{access, App, AppError, Caller};

use crate::error::ApiError;

/// An authenticated caller, as a handler argument.
pub struct Auth(pub Caller);

fn presented_key(parts: &Parts) -> Option<&str> {
    let text = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
    access::presented_key(text(header::AUTHORIZATION.as_str()), text("x-api-key"))
}

impl FromRequestParts<Arc<App>> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, app: &Arc<App>) -> Result<Self, ApiError> {
        let presented = presented_key(parts).ok_or(AppError::Unauthorized)?;
        let caller = app.authenticate(presented).await?;
        app.check_rate(&caller.key_id)?;
        Ok(Auth(caller))
    }
}
