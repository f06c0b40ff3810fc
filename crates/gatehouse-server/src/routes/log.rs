//! The transparency log over HTTP: the signed checkpoint and its key are
//! public (an auditor needs them before holding any API key); proofs need
//! a key of any role.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::Json;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gatehouse_api::error::{AuthErrors, BadQuery, NotFound, ServerErrors};
use gatehouse_api::queries::{ConsistencyQuery, InclusionQuery};
use gatehouse_api::records::{ConsistencyProofView, InclusionProofView};
use gatehouse_app::{App, AppError};

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::ApiQuery;

fn text(body: String) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

fn b64(h: &gatehouse_log::Hash) -> String {
    STANDARD.encode(h.0)
}

/// The newest signed checkpoint (a C2SP tlog-checkpoint in a signed note).
///
/// Public.
#[utoipa::path(get, path = "/api/log/checkpoint", tag = "log",
    responses(
        (status = 200, description = "The signed note", content_type = "text/plain", body = String),
        NotFound, ServerErrors))]
pub async fn checkpoint(State(app): State<Arc<App>>) -> Result<impl IntoResponse, ApiError> {
    let note = app
        .checkpoint()
        .await?
        .ok_or(AppError::NotFound("checkpoint (the log is empty)"))?;
    Ok(text(note))
}

/// The key checkpoints are signed with (signed-note verifier format).
///
/// Public; an auditor should obtain it out of band too.
#[utoipa::path(get, path = "/api/log/key", tag = "log",
    responses((status = 200, description = "The verifier key", content_type = "text/plain", body = String)))]
pub async fn key(State(app): State<Arc<App>>) -> impl IntoResponse {
    text(format!("{}\n", app.log_key()))
}

/// A leaf (its exact bytes) and its RFC 6962 audit path to the root of
/// the tree of `size`.
///
/// Roles: reviewer, auditor and admin for any leaf; an agent only for
/// leaves about decisions it asked for (403 otherwise); executors none.
#[utoipa::path(get, path = "/api/log/proof/inclusion", tag = "log",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The leaf and its proof", body = InclusionProofView),
        BadQuery, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn inclusion(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<InclusionQuery>,
) -> Result<Json<InclusionProofView>, ApiError> {
    let p = app.inclusion_proof(&caller, q.index, q.size).await?;
    Ok(Json(InclusionProofView {
        index: p.index,
        size: p.size,
        leaf: STANDARD.encode(&p.leaf),
        leaf_hash: b64(&gatehouse_log::proof::leaf_hash(&p.leaf)),
        proof: p.proof.iter().map(b64).collect(),
    }))
}

/// The RFC 6962 consistency proof from the tree of size `from` to the
/// tree of size `to`.
///
/// Roles: any.
#[utoipa::path(get, path = "/api/log/proof/consistency", tag = "log",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProofView),
        BadQuery, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn consistency(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiQuery(q): ApiQuery<ConsistencyQuery>,
) -> Result<Json<ConsistencyProofView>, ApiError> {
    let proof = app.consistency_proof(&caller, q.from, q.to).await?;
    Ok(Json(ConsistencyProofView {
        from: q.from,
        to: q.to,
        proof: proof.iter().map(b64).collect(),
    }))
}
