//! The streamable-HTTP MCP endpoint on the main server: `/mcp`, with the
//! API's bearer keys. Stateless (no sessions), so any replica can answer
//! any request, and JSON answers rather than event streams.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use gatehouse_app::{App, AppError};
use rmcp::transport::streamable_http_server::session::never::NeverSessionManager;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};

use crate::server::GatehouseServer;

pub const PATH: &str = "/mcp";

/// `/mcp`, to merge into the server's router.
pub fn router(app: Arc<App>) -> Router {
    let handler = GatehouseServer::local(app.clone());
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Every request carries an API key that a browser would not have,
        // so a rebinding attack gains nothing; deployments serve any name.
        .disable_allowed_hosts();
    let service = StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(NeverSessionManager::default()),
        config,
    );
    Router::new()
        .route_service(PATH, service)
        .layer(axum::middleware::from_fn_with_state(app, authenticate))
}

/// The API's bearer key (or `x-api-key`), authenticated and rate limited
/// like any API request; a [`gatehouse_app::Caller`] goes on to the tools.
async fn authenticate(State(app): State<Arc<App>>, mut request: Request, next: Next) -> Response {
    let presented = presented_key(&request);
    let caller = match presented {
        Some(key) => app.authenticate(&key).await,
        None => Err(AppError::Unauthorized),
    };
    let caller = match caller.and_then(|c| app.check_rate(&c.key_id).map(|()| c)) {
        Ok(c) => c,
        Err(e) => return refused(e),
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn presented_key(request: &Request) -> Option<String> {
    let text = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok());
    gatehouse_app::access::presented_key(text(header::AUTHORIZATION.as_str()), text("x-api-key"))
        .map(str::to_string)
}

/// The API's error body; 401 carries the challenge MCP clients look for.
fn refused(e: AppError) -> Response {
    let status = match &e {
        AppError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
        AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        _ => StatusCode::UNAUTHORIZED,
    };
    let body = axum::Json(serde_json::json!({
        "error": {"code": e.code(), "message": e.public_message()}
    }));
    let mut response = (status, body).into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"gatehouse\""),
        );
    }
    response
}
