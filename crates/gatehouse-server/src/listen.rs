//! The accept loop: every connection gets a deadline for its request
//! headers (which also closes idle keep-alive connections), and beyond a
//! maximum number of open connections new ones are answered 503 and
//! closed, so slow or idle clients cannot exhaust file descriptors or
//! memory while normal requests go on being answered.
//!
//! `axum::serve` has no such limits, and hyper-util's protocol-detecting
//! builder runs no timer until it has seen the first bytes, so a peer that
//! connects and sends nothing would be held forever. Connections here
//! speak HTTP/1.1 through hyper's own builder, whose header-read timer
//! starts as soon as the connection is served and again whenever it waits
//! for the next request.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tower::ServiceExt;

use gatehouse_app::throttle::Throttle;

/// Limits on the connections themselves; a request's own limits (body
/// size and time) are in [`crate::ServerConfig`].
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time for a request's headers to arrive, counted from the moment the
    /// connection opens or its previous response was sent. An idle
    /// keep-alive connection is closed after this long.
    pub header_timeout: Duration,
    /// Connections open at once; one more is answered 503 and closed.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            max_connections: 8192,
        }
    }
}

/// Bytes hyper buffers per connection, and so the largest head it reads
/// before giving up on it: twice the router's header limit, small enough
/// that every connection at once cannot exhaust memory (8,192 × 64 KiB).
const HEAD_BUFFER: usize = 64 * 1024;
/// Connections being refused at once; more are closed without an answer,
/// so a flood cannot turn the refusals themselves into a resource drain.
const MAX_REFUSING: usize = 256;
/// How long a refused connection is given to take its 503.
const REFUSAL_TIME: Duration = Duration::from_secs(1);

/// Pending connections the kernel queues before the server accepts them.
/// Tokio's `TcpListener::bind` asks for 1,024; a burst beyond the queue
/// has its SYNs dropped and its clients wait a full second to retry.
const BACKLOG: u32 = 4096;

/// Listens on `addr` (a host name is resolved; its first address that
/// can be bound is used) with a deep accept queue.
pub async fn bind(addr: &str) -> std::io::Result<TcpListener> {
    let mut last = None;
    for candidate in tokio::net::lookup_host(addr).await? {
        let socket = if candidate.is_ipv4() {
            tokio::net::TcpSocket::new_v4()?
        } else {
            tokio::net::TcpSocket::new_v6()?
        };
        // A restarted server can listen at once on a port whose previous
        // connections are still in TIME_WAIT.
        socket.set_reuseaddr(true)?;
        match socket.bind(candidate).and_then(|()| socket.listen(BACKLOG)) {
            Ok(listener) => return Ok(listener),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the address resolves to nothing",
        )
    }))
}

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting and waits for the requests in flight to be answered.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()> {
    let mut http = hyper::server::conn::http1::Builder::new();
    // Heads up to 64 KiB and hyper's default 100 fields reach the router,
    // which refuses anything over its own, smaller limits with the API's
    // error body; only heads beyond these get hyper's bare 431. (Raising
    // hyper's field limit makes it allocate and fill an index array of
    // that size for every request: a quarter of a no-op's throughput.)
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .max_buf_size(HEAD_BUFFER);
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let refusing = Arc::new(Semaphore::new(MAX_REFUSING));
    let graceful = GracefulShutdown::new();
    let accept_errors = Throttle::new(Duration::from_secs(10));
    tokio::pin!(shutdown);
    loop {
        let stream = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of descriptors or memory: wait for connections to
                    // close instead of spinning on the same error.
                    if let Some(repeats) = accept_errors.admit(&e.to_string()) {
                        tracing::error!(error = %e, repeats, "accepting a connection failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = open.clone().try_acquire_owned() else {
            metrics::counter!("gatehouse_http_connections_refused_total").increment(1);
            if let Ok(slot) = refusing.clone().try_acquire_owned() {
                tokio::spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIME, refuse(stream)).await;
                    drop(slot);
                });
            }
            continue;
        };
        // Small requests and answers: send each as soon as it is written.
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            metrics::gauge!("gatehouse_http_connections_open").increment(1.0);
            // A connection's end (timeout, reset by the peer) is routine.
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            metrics::gauge!("gatehouse_http_connections_open").decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Answers 503 in the API's error shape without reading the request, then
/// closes. The request is drained briefly first, because closing a socket
/// with unread input resets it and the client might never see the answer.
async fn refuse(mut stream: TcpStream) {
    let id = ulid::Ulid::new().to_string();
    let body = serde_json::json!({"error": {
        "code": "too_many_connections",
        "message": "the server has as many open connections as it accepts; retry shortly",
        "request_id": id,
    }})
    .to_string();
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
         retry-after: 1\r\nx-request-id: {id}\r\nconnection: close\r\n\
         content-length: {}\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_err() {
        return;
    }
    let _ = stream.shutdown().await;
    let mut sink = [0u8; 4096];
    while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
}
