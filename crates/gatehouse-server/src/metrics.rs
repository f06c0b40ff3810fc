//! Prometheus metrics: one process-wide recorder, `/metrics` behind the
//! admin or auditor role on the main listener, and an unauthenticated
//! router for a separate, private `--metrics-listen` address.

use std::sync::{Arc, OnceLock};

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use gatehouse_api::error::{AuthErrors, ServerErrors};
use gatehouse_app::App;
use gatehouse_core::Role;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::auth::Auth;
use crate::error::ApiError;

/// Latency buckets in seconds, from a cached read to a long review.
const SECONDS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0, 60.0, 600.0, 3600.0,
    86400.0,
];
const BATCH: [f64; 10] = [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 1024.0];

/// The process's recorder, installed on first use. When another recorder
/// was installed first (a test harness, say), metrics go there and this
/// handle renders an empty page.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &SECONDS)
            .and_then(|b| {
                b.set_buckets_for_metric(Matcher::Full("gatehouse_store_batch_size".into()), &BATCH)
            })
            .expect("bucket lists are not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics stays empty");
        }
        handle
    })
}

/// Keeps histograms bounded between scrapes; the server runs it on a timer.
pub fn upkeep() {
    handle().run_upkeep();
}

async fn render(app: &App) -> Result<impl IntoResponse, ApiError> {
    app.refresh_gauges().await?;
    let handle = handle();
    handle.run_upkeep();
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        handle.render(),
    ))
}

/// Prometheus metrics (text format 0.0.4).
///
/// Roles: admin, auditor. For an unauthenticated scrape, serve them on a
/// separate private address with `--metrics-listen`.
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses(
        (status = 200, description = "Prometheus text format", content_type = "text/plain", body = String),
        AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn metrics(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<impl IntoResponse, ApiError> {
    caller.require(&[Role::Admin, Role::Auditor], "read metrics")?;
    render(&app).await
}

/// `GET /metrics` without authentication, for a listener only the
/// monitoring network reaches.
pub fn metrics_router(app: Arc<App>) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(app): State<Arc<App>>| async move { render(&app).await }),
        )
        .with_state(app)
}
