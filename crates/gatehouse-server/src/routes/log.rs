//! The transparency log over HTTP: the signed checkpoint and its key are
//! public (an auditor needs them before holding any API key); proofs need
//! a key of any role.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::Engine as _;
use gatehouse_log::tree::{Op, Output};
use serde_json::{json, Value};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::service::Gate;

fn text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

pub async fn checkpoint(State(gate): State<Arc<Gate>>) -> Result<impl IntoResponse, ApiError> {
    let note = gate
        .checkpoint()
        .await?
        .ok_or(ApiError::NotFound("checkpoint (the log is empty)"))?;
    Ok(text(note))
}

pub async fn key(State(gate): State<Arc<Gate>>) -> impl IntoResponse {
    text(format!("{}\n", gate.store().log_verifier_key()))
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

async fn checked_size(gate: &Gate, size: u64) -> Result<(), ApiError> {
    let current = gate.store().log_size().await?;
    if size == 0 || size > current {
        return Err(ApiError::BadRequest(format!(
            "size must be between 1 and the log size ({current})"
        )));
    }
    Ok(())
}

fn b64(h: &gatehouse_log::Hash) -> String {
    base64::engine::general_purpose::STANDARD.encode(h.0)
}

/// `?index=I&size=N`: the leaf (base64 of its exact bytes), its hash, and
/// the RFC 6962 audit path to the root of the tree of size N.
pub async fn inclusion(
    State(gate): State<Arc<Gate>>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (index, size) = (number(&query, "index")?, number(&query, "size")?);
    checked_size(&gate, size).await?;
    if index >= size {
        return Err(ApiError::BadRequest(format!(
            "index must be below size ({size})"
        )));
    }
    let Output::Proof(proof) = gate.tree(Op::Inclusion { index, size }).await? else {
        return Err(ApiError::Internal("inclusion proof missing".into()));
    };
    let leaf = gate
        .store()
        .log_leaves(index, 1)
        .await?
        .pop()
        .ok_or_else(|| ApiError::Internal(format!("log leaf {index} missing")))?
        .1;
    Ok(Json(json!({
        "index": index,
        "size": size,
        "leaf": base64::engine::general_purpose::STANDARD.encode(&leaf),
        "leaf_hash": b64(&gatehouse_log::proof::leaf_hash(&leaf)),
        "proof": proof.iter().map(b64).collect::<Vec<_>>(),
    })))
}

/// `?from=M&to=N`: the RFC 6962 consistency proof from size M to size N.
pub async fn consistency(
    State(gate): State<Arc<Gate>>,
    _caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let (from, to) = (number(&query, "from")?, number(&query, "to")?);
    checked_size(&gate, to).await?;
    if from == 0 || from > to {
        return Err(ApiError::BadRequest(format!(
            "from must be between 1 and to ({to})"
        )));
    }
    let proof = if from == to {
        Vec::new()
    } else {
        let Output::Proof(p) = gate.tree(Op::Consistency { old: from, new: to }).await? else {
            return Err(ApiError::Internal("consistency proof missing".into()));
        };
        p
    };
    Ok(Json(json!({
        "from": from,
        "to": to,
        "proof": proof.iter().map(b64).collect::<Vec<_>>(),
    })))
}
