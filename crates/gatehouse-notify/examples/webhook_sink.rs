//! A webhook receiver for benchmarks (`bench/run.sh` with
//! `GATEHOUSE_BENCH_WEBHOOKS=1`): it answers every POST with 204 and
//! counts them, and `GET /count` tells how many arrived, so a benchmark
//! can see when the deliveries a run caused have all been made. It is
//! deliberately cheap, standing in for a receiver on another machine;
//! the end-to-end tests check signatures with the `standardwebhooks`
//! package instead.
//!
//!     cargo run --release -p gatehouse-notify --example webhook_sink -- 127.0.0.1:18999

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let count = Arc::new(AtomicU64::new(0));
        let app = Router::new()
            .route(
                "/count",
                get(|State(c): State<Arc<AtomicU64>>| async move {
                    c.load(Ordering::Relaxed).to_string()
                }),
            )
            .route(
                "/{*path}",
                post(|State(c): State<Arc<AtomicU64>>| async move {
                    c.fetch_add(1, Ordering::Relaxed);
                    StatusCode::NO_CONTENT
                }),
            )
            .with_state(count);
        let listener = tokio::net::TcpListener::bind(&addr).await?;
        // bench/run.sh reads this line to find the port.
        println!(
            "webhook sink listening on http://{}",
            listener.local_addr()?
        );
        axum::serve(listener, app).await
    })
}
