//! The transparency log over HTTP: the signed checkpoint and its key are
//! public (an auditor needs them before holding any API key); proofs need
//! a key of any role.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gatehouse_app::{App, AppError};
use serde_json::{json, Value};

use crate::auth::Auth;
use crate::error::ApiError;

fn text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

pub async fn checkpoint(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    let note = app
        .checkpoint()
        .await?
        .ok_or(AppError::NotFound("checkpoint (the log is empty)"))?;
    Ok(text(note))
}

pub async fn key(State(app): State<Arc<App>>) -> impl IntoResponse {
    text(format!("{}\n", app.log_key()))
}

fn number(query: &HashMap<String, String>, name: &str) -> Result<u64, ApiError> {
    let raw = query
        .get(name)
        .ok_or_else(|| ApiError::BadRequest(format!("query parameter {name} is required")))?;
    raw.parse().map_err(|_| {
        ApiError::BadRequest(format!(
            "{name} must be a non-negative integer (got {raw:?})"
        ))
    })
}

fn b64(h: &gatehouse_log::Hash) -> String {
    STANDARD.encode(h.0)
}

/// `?index=I&size=N`: the leaf (base64 of its exact bytes), its hash, and
/// the RFC 6962 audit path to the root of the tree of size N.
pub async fn inclusion(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (index, size) = (number(&query, "index")?, number(&query, "size")?);
    let p = app.inclusion_proof(&caller, index, size).await?;
    Ok(Json(json!({
        "index": p.index,
        "size": p.size,
        "leaf": STANDARD.encode(&p.leaf),
        "leaf_hash": b64(&gatehouse_log::proof::leaf_hash(&p.leaf)),
        "proof": p.proof.iter().map(b64).collect::<Vec<_>>(),
    })))
}

/// `?from=M&to=N`: the RFC 6962 consistency proof from size M to size N.
pub async fn consistency(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (number(&query, "from")?, number(&query, "to")?);
    let proof = app.consistency_proof(&caller, from, to).await?;
    Ok(Json(json!({
        "from": from,
        "to": to,
        "proof": proof.iter().map(b64).collect::<Vec<_>>(),
    })))
}
