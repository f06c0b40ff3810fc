//! Who is calling and what they may do: API keys (generation, hashing,
//! lookup), roles, rate limits, and key management.
//!
//! A key looks like `gh_<key id>_<64 hex chars>`. Only the SHA-256 of the
//! secret part is stored; the id part lets us find the row without a scan,
//! and the hashes are compared in constant time. A fast hash is enough
//! because secrets are 256 random bits, not passwords.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use gatehouse_core::ids;
pub use gatehouse_store::ApiKey;
use gatehouse_store::{Role, User};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::{AppError, AppResult};
use crate::{now, App};

pub const KEY_PREFIX: &str = "gh_";

/// The longest name a key may have.
const MAX_KEY_NAME: usize = 200;

/// A freshly generated key: the record to store and the secret to show once.
pub struct NewKey {
    pub key: ApiKey,
    pub secret: String,
}

/// A key's name: the role's when none is given; never empty or blank (a
/// key's name is its identity in reviews and the executor's audience),
/// and at most 200 characters.
pub fn key_name(name: Option<String>, role: Role) -> AppResult<String> {
    let name = name.unwrap_or_else(|| role.as_str().to_string());
    if name.trim().is_empty() {
        return Err(AppError::Validation("name must not be empty".into()));
    }
    if name.chars().count() > MAX_KEY_NAME {
        return Err(AppError::Validation(format!(
            "name must be at most {MAX_KEY_NAME} characters"
        )));
    }
    Ok(name)
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
            minted_by: None,
            user: None,
        },
        secret: format!("{KEY_PREFIX}{id}_{secret_part}"),
    }
}

pub fn hash_secret(secret_part: &str) -> Vec<u8> {
    Sha256::digest(secret_part.as_bytes()).to_vec()
}

/// The API key a request presents: the token of `Authorization: Bearer …`,
/// else the `x-api-key` header. An `Authorization` header with another
/// scheme presents no key at all rather than falling back, so a mistyped
/// scheme is refused instead of quietly ignored. Adapters pass the header
/// values as text (a value that is not text counts as absent), which keeps
/// this crate free of HTTP types.
pub fn presented_key<'a>(
    authorization: Option<&'a str>,
    x_api_key: Option<&'a str>,
) -> Option<&'a str> {
    if let Some(v) = authorization {
        let (scheme, token) = v.split_once(' ')?;
        return scheme.eq_ignore_ascii_case("bearer").then(|| token.trim());
    }
    x_api_key.map(str::trim)
}

/// Splits `gh_<id>_<secret>` into its id and secret parts.
pub fn parse_key(presented: &str) -> Option<(&str, &str)> {
    let rest = presented.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    (!id.is_empty() && !secret.is_empty()).then_some((id, secret))
}

/// Checks a presented key against the stored one.
pub fn verify(stored: &ApiKey, secret_part: &str) -> bool {
    let presented = hash_secret(secret_part);
    let matches: bool = presented.ct_eq(&stored.secret_hash).into();
    matches && stored.revoked_at.is_none()
}

/// Who is calling, after authentication.
#[derive(Debug, Clone)]
pub struct Caller {
    pub key_id: String,
    pub name: String,
    pub role: Role,
    /// The person behind the key (or the console session), if any.
    pub user: Option<String>,
    /// The person's groups, sorted; empty without a person.
    pub groups: Vec<String>,
}

impl Caller {
    /// A caller with a key and no person behind it.
    pub fn key(key_id: &str, name: &str, role: Role) -> Caller {
        Caller {
            key_id: key_id.to_string(),
            name: name.to_string(),
            role,
            user: None,
            groups: Vec::new(),
        }
    }

    /// Who this caller is for separation of duties and quorum: the person
    /// when the key belongs to one, otherwise the key's name. A person
    /// counts once whatever keys or channels they use.
    pub fn identity(&self) -> &str {
        self.user.as_deref().unwrap_or(&self.name)
    }

    /// Fails unless the caller's role is one of `allowed`.
    pub fn require(&self, allowed: &[Role], action: &'static str) -> AppResult<()> {
        if allowed.contains(&self.role) {
            Ok(())
        } else {
            Err(AppError::Forbidden {
                role: self.role.as_str(),
                action,
            })
        }
    }

    /// Reviewers, auditors and admins read everything; agents read what
    /// they created; executors read nothing (they redeem tokens).
    pub fn may_read(&self, created_by: &str) -> bool {
        match self.role {
            Role::Reviewer | Role::Auditor | Role::Admin => true,
            Role::Agent => self.key_id == created_by,
            Role::Executor => false,
        }
    }
}

/// Successful lookups (keys by id, users by name), kept briefly so
/// authentication does not cost a database read per request.
pub(crate) struct Cache<T> {
    entries: Mutex<HashMap<String, (T, Instant)>>,
}

impl<T> Default for Cache<T> {
    fn default() -> Self {
        Cache {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<T: Clone> Cache<T> {
    pub(crate) fn get(&self, id: &str, ttl: Duration) -> Option<T> {
        let entries = self.entries.lock().ok()?;
        entries
            .get(id)
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(k, _)| k.clone())
    }

    pub(crate) fn put(&self, id: &str, value: T) {
        if let Ok(mut entries) = self.entries.lock() {
            // Bounded: a flood of distinct valid keys cannot grow it forever.
            if entries.len() > 10_000 {
                entries.clear();
            }
            entries.insert(id.to_string(), (value, Instant::now()));
        }
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.clear();
        }
    }

    pub(crate) fn forget(&self, id: &str) {
        if let Ok(mut entries) = self.entries.lock() {
            entries.remove(id);
        }
    }
}

/// A token bucket per API key; `None` when rate limiting is off.
pub(crate) fn rate_limiter(per_second: u32, burst: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_second).map(|rate| {
        let burst = NonZeroU32::new(burst).unwrap_or(rate);
        RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
    })
}

impl App {
    /// The caller a presented key belongs to, if it is valid and not revoked.
    pub async fn authenticate(&self, presented: &str) -> AppResult<Caller> {
        let (id, secret) = parse_key(presented).ok_or(AppError::Unauthorized)?;
        let key = match self.keys.get(id, self.config.key_cache_ttl) {
            Some(k) => k,
            None => {
                let k = self
                    .store
                    .get_key(id)
                    .await?
                    .ok_or(AppError::Unauthorized)?;
                self.keys.put(id, k.clone());
                k
            }
        };
        if !verify(&key, secret) {
            return Err(AppError::Unauthorized);
        }
        let mut caller = Caller::key(&key.id, &key.name, key.role);
        if let Some(name) = &key.user {
            // A disabled person's keys stop working with them.
            let user = self.cached_user(name).await?.filter(|u| u.is_active());
            let user = user.ok_or(AppError::Unauthorized)?;
            caller.user = Some(user.name);
            caller.groups = user.groups;
        }
        Ok(caller)
    }

    /// Whether a group has an active member, through the same short-lived
    /// cache: owner routing asks on the decide path, where a database read
    /// per pending decision cost a quarter of the throughput.
    pub(crate) async fn group_exists(&self, group: &str) -> AppResult<bool> {
        if let Some(known) = self.groups.get(group, self.config.key_cache_ttl) {
            return Ok(known);
        }
        let exists = self.store.group_exists(group).await?;
        self.groups.put(group, exists);
        Ok(exists)
    }

    /// A user by name through the same short-lived cache as keys.
    pub(crate) async fn cached_user(&self, name: &str) -> AppResult<Option<User>> {
        if let Some(u) = self.users.get(name, self.config.key_cache_ttl) {
            return Ok(Some(u));
        }
        let found = self.store.get_user(name).await?;
        if let Some(u) = &found {
            self.users.put(name, u.clone());
        }
        Ok(found)
    }

    /// Spends one request from the key's bucket.
    pub fn check_rate(&self, key_id: &str) -> AppResult<()> {
        let Some(limiter) = &self.limiter else {
            return Ok(());
        };
        limiter.check_key(&key_id.to_string()).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            AppError::RateLimited(wait.as_secs().max(1))
        })
    }

    /// Creates a key; `name` defaults to the role's name (or the person's,
    /// for a key that belongs to `user`).
    pub async fn create_key(
        &self,
        caller: &Caller,
        role: Role,
        name: Option<String>,
        user: Option<String>,
    ) -> AppResult<NewKey> {
        caller.require(&[Role::Admin], "manage API keys")?;
        let name = key_name(name.or_else(|| user.clone()), role)?;
        let mut new = generate_key(role, &name, now());
        if let Some(u) = user {
            let found = self.store.get_user(&u).await?;
            if !found.is_some_and(|f| f.is_active()) {
                return Err(AppError::Validation(format!(
                    "no active user named {u:?}; create the user first"
                )));
            }
            new.key.user = Some(u);
        }
        // The minting key is the new key's principal: what it creates or
        // approves counts as the minter's for separation of duties.
        new.key.minted_by = Some(caller.key_id.clone());
        self.store.create_key(&new.key).await?;
        Ok(new)
    }

    pub async fn list_keys(&self, caller: &Caller) -> AppResult<Vec<ApiKey>> {
        caller.require(&[Role::Admin], "manage API keys")?;
        Ok(self.store.list_keys().await?)
    }

    /// The principal a key acts for: the key that minted it through the
    /// API, and so on up to a key made with the CLI. A chain is followed
    /// at most a few steps (keys minting keys minting keys); an unknown key
    /// is its own principal.
    pub(crate) async fn principal(&self, key_id: &str) -> AppResult<String> {
        let mut current = key_id.to_string();
        for _ in 0..16 {
            match self.store.get_key(&current).await? {
                Some(ApiKey {
                    minted_by: Some(minter),
                    ..
                }) => current = minter,
                _ => break,
            }
        }
        Ok(current)
    }

    /// A key's name by id, for adapters that label what a key did (the
    /// notifier picks a callback's secret by it); `None` if unknown.
    pub async fn key_name(&self, key_id: &str) -> AppResult<Option<String>> {
        Ok(self.store.get_key(key_id).await?.map(|k| k.name))
    }

    pub async fn revoke_key(&self, caller: &Caller, id: &str) -> AppResult<()> {
        caller.require(&[Role::Admin], "manage API keys")?;
        if !self.store.revoke_key(id, now()).await? {
            return Err(AppError::NotFound("API key"));
        }
        self.keys.forget(id);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_presented_as_a_bearer_token_or_in_x_api_key() {
        assert_eq!(presented_key(Some("Bearer  gh_a_b "), None), Some("gh_a_b"));
        assert_eq!(
            presented_key(Some("bearer gh_a_b"), Some("gh_c_d")),
            Some("gh_a_b")
        );
        assert_eq!(presented_key(None, Some(" gh_c_d ")), Some("gh_c_d"));
        // Another scheme is refused, not replaced by x-api-key.
        assert_eq!(presented_key(Some("Basic Z2g6eA=="), Some("gh_c_d")), None);
        assert_eq!(presented_key(Some("gh_a_b"), None), None);
        assert_eq!(presented_key(None, None), None);
    }

    #[test]
    fn keys_parse_and_verify_only_with_their_own_secret() {
        let new = generate_key(Role::Agent, "a", OffsetDateTime::now_utc());
        let (id, secret) = parse_key(&new.secret).unwrap();
        assert_eq!(id, new.key.id);
        assert!(verify(&new.key, secret));
        assert!(!verify(&new.key, &"0".repeat(64)));
        let revoked = ApiKey {
            revoked_at: Some(OffsetDateTime::now_utc()),
            ..new.key.clone()
        };
        assert!(!verify(&revoked, secret));
        assert!(parse_key("gh__x").is_none());
        assert!(parse_key("nope").is_none());
    }
}
