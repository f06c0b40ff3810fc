//! The reviewer console: server-rendered pages under `/console`, a thin
//! adapter over `gatehouse_app::App` like the HTTP API. Templates are
//! askama, compiled into the binary; the stylesheet and the one script are
//! embedded too, so the console works offline and loads nothing from
//! elsewhere. Every form works without JavaScript.
//!
//! Security: sessions in the database (`gatehouse_app::sessions`), CSRF
//! tokens on every form, a strict Content-Security-Policy with no inline
//! script or style, `frame-ancestors 'none'`, and pages never cached.

mod actions;
mod deliveries;
mod live;
mod pages;
mod session;
mod views;

use std::sync::Arc;

use askama::Template;
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::HeaderValue;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use gatehouse_app::App;

pub use views::MeView;

/// How the console is served.
#[derive(Debug, Clone, Default)]
pub struct ConsoleConfig {
    /// Mark cookies `Secure` (the public URL is https).
    pub secure_cookies: bool,
}

pub(crate) struct Console {
    pub app: Arc<App>,
    pub config: ConsoleConfig,
}

/// Scripts and styles only from the console itself; no inline code, no
/// frames, forms only to the console.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
    connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

#[derive(Template)]
#[template(path = "login.html")]
pub(crate) struct LoginPage {
    pub me: Option<MeView>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub csrf: String,
}

/// The page a mailed sign-in link opens: a GET only shows it (mail
/// scanners follow links); its POST signs in.
#[derive(Template)]
#[template(path = "link.html")]
pub(crate) struct LinkPage {
    pub me: Option<MeView>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub token: String,
}

/// A rendered template; a template that fails to render (it cannot, with
/// these types) is a plain 500 without details.
pub(crate) fn render(t: &impl Template) -> Response {
    match t.render() {
        Ok(html) => Html(html).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "console template failed");
            (
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                "internal error",
            )
                .into_response()
        }
    }
}

async fn security_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if !h.contains_key(CACHE_CONTROL) {
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The console's routes, all under `/console`.
pub fn router(app: Arc<App>, config: ConsoleConfig) -> Router {
    let console = Arc::new(Console { app, config });
    Router::new()
        .route("/console", get(pages::queue))
        .route("/console/queue/rows", get(pages::queue_rows))
        .route("/console/events", get(live::events))
        .route(
            "/console/login",
            get(session::login_form).post(session::login),
        )
        .route("/console/logout", post(session::logout))
        .route(
            "/console/link/{token}",
            get(session::link_page).post(session::link_sign_in),
        )
        .route("/console/history", get(pages::history))
        .route("/console/deliveries", get(deliveries::dead_letters))
        .route("/console/deliveries/{id}/retry", post(deliveries::retry))
        .route("/console/decisions/{id}", get(pages::decision))
        .route("/console/decisions/{id}/packet", get(pages::packet))
        .route("/console/decisions/{id}/review", post(actions::review))
        .route("/console/bulk", post(actions::bulk))
        .route(
            "/console/assets/console.css",
            get(|| async {
                asset(
                    include_str!("../assets/console.css"),
                    "text/css; charset=utf-8",
                )
            }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async {
                asset(
                    include_str!("../assets/console.js"),
                    "text/javascript; charset=utf-8",
                )
            }),
        )
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(console)
}
