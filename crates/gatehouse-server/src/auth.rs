//! API keys: generation, hashing, lookup, and the `Caller` extractor.
//!
//! A key looks like `gh_<key id>_<64 hex chars>`. Only the SHA-256 of the
//! secret part is stored; the id part lets us find the row without a scan,
//! and the hashes are compared in constant time. A fast hash is enough
//! because secrets are 256 random bits, not passwords.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use gatehouse_core::ids;
use gatehouse_store::{ApiKey, Role};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::service::Gate;

pub const KEY_PREFIX: &str = "gh_";

/// A freshly generated key: the record to store and the secret to show once.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

pub fn generate_key(role: Role, name: &str, now: OffsetDateTime) -> NewKey {
    let id = ids::key_id();
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret_part = hex::encode(bytes);
    NewKey {
        key: ApiKey {
            id: id.clone(),
            name: name.to_string(),
            role,
            secret_hash: hash_secret(&secret_part),
            created_at: gatehouse_core::decision::truncate_to_millis(now),
            revoked_at: None,
        },
        secret: format!("{KEY_PREFIX}{id}_{secret_part}"),
    }
}

pub fn hash_secret(secret_part: &str) -> Vec<u8> {
    Sha256::digest(secret_part.as_bytes()).to_vec()
}

/// Splits `gh_<id>_<secret>` into its id and secret parts.
pub fn parse_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Who is calling, after authentication.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
    pub role: Role,
}

impl Caller {
    /// Fails unless the caller's role is one of `allowed`.
    pub fn require(&self, allowed: &[Role], action: &'static str) -> Result<(), ApiError> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                role: self.role.as_str(),
                action,
            })
        }
    }

    /// Reviewers, auditors and admins read everything; agents read what
    /// they created.
    pub fn may_read(&self, created_by: &str) -> bool {
        self.role != Role::Agent || self.key_id == created_by
    }
}

/// Successful lookups, kept briefly so authentication does not cost a
/// database read per request.
#[derive(Default)]
pub struct KeyCache {
    entries: Mutex<HashMap<String, (ApiKey, Instant)>>,
}

impl KeyCache {
    pub fn get(&self, id: &str, ttl: std::time::Duration) -> Option<ApiKey> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(k, _)| k.clone())
    }

    pub fn put(&self, key: ApiKey) {
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded: a flood of distinct valid keys cannot grow it forever.
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(key.id.clone(), (key, Instant::now()));
        }
    }

    pub fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}

/// Checks a presented key against the stored one.
pub fn verify(stored: &ApiKey, secret_part: &str) -> bool {
    let presented = hash_secret(secret_part);
    let matches: bool = presented.ct_eq(&stored.secret_hash).into();
    matches && stored.revoked_at.is_none()
}

fn presented_key(parts: &Parts) -> Option<&str> {
    if let Some(v) = parts.headers.get(header::AUTHORIZATION) {
        let v = v.to_str().ok()?;
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    parts.headers.get("x-api-key")?.to_str().ok().map(str::trim)
}

impl FromRequestParts<Arc<Gate>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gate: &Arc<Gate>) -> Result<Self, ApiError> {
        let presented = presented_key(parts).ok_or(ApiError::Unauthorized)?;
        let caller = gate.authenticate(presented).await?;
        gate.check_rate(&caller.key_id)?;
        Ok(caller)
    }
}
