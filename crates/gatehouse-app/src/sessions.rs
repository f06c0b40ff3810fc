//! Console sessions: signing in with a password, the session behind a
//! cookie, and signing out. Sessions live in the database, so they survive
//! restarts and work on every replica.

use std::num::NonZeroU32;
use std::time::Duration;

use gatehouse_store::{Session, User};
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::error::{AppError, AppResult};
use crate::{now, App, Caller};

/// Activity is written back at most this often per session.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

/// A signed-in person: who they are for every use case, and the token
/// their forms must carry.
#[derive(Debug, Clone)]
pub struct ConsoleSession {
    pub caller: Caller,
    pub user: User,
    pub csrf: String,
}

/// A new session: the cookie's token (shown once, never stored) and the session.
pub struct SignedIn {
    pub token: String,
    pub session: ConsoleSession,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Whether a presented CSRF token is the session's, in constant time.
pub fn csrf_matches(expected: &str, presented: &str) -> bool {
    expected.len() == presented.len() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

/// Sign-in attempts per user name, so guessing one person's password is
/// slow from any address. Each replica keeps its own count: N replicas
/// allow N times the rate.
pub(crate) fn sign_in_limiter(per_minute: u32) -> Option<DefaultKeyedRateLimiter<String>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n).allow_burst(n)))
}

/// The caller a person is in the console: their name is the key name,
/// and `user:NAME` stands where a key id would.
pub fn caller_of(user: &User) -> Caller {
    Caller {
        key_id: format!("user:{}", user.name),
        name: user.name.clone(),
        role: user.role,
        user: Some(user.name.clone()),
        groups: user.groups.clone(),
    }
}

impl App {
    /// Signs a person in. Every failure is the same `Unauthorized`
    /// (unknown name, wrong password, disabled), and attempts per name are
    /// limited (`RateLimited`).
    pub async fn sign_in(&self, name: &str, password: &str) -> AppResult<SignedIn> {
        if let Some(limiter) = &self.sign_ins {
            let key = name.to_lowercase();
            limiter.check_key(&key).map_err(|not_until| {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                AppError::RateLimited(wait.as_secs().max(1))
            })?;
        }
        let user = self.check_password(name, password).await?;
        self.start_session(user).await
    }

    /// A one-time link (its token) that signs `user` in and opens a
    /// decision, for a notification mail; it works once, within `ttl`.
    pub async fn create_sign_in_link(
        &self,
        user: &str,
        decision_id: &str,
        ttl: Duration,
    ) -> AppResult<String> {
        let token = random_hex();
        let expires = gatehouse_core::decision::to_unix_millis(now() + ttl);
        self.store
            .create_sign_in_link(&token_hash(&token), user, decision_id, expires)
            .await?;
        Ok(token)
    }

    /// Signs in with a mailed link: once, before it expires, and only for
    /// a person still active. Returns the session and the decision to open.
    pub async fn sign_in_with_link(&self, token: &str) -> AppResult<(SignedIn, String)> {
        let at = gatehouse_core::decision::to_unix_millis(now());
        let (name, decision) = self
            .store
            .use_sign_in_link(&token_hash(token), at)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let user = self
            .store
            .get_user(&name)
            .await?
            .filter(User::is_active)
            .ok_or(AppError::Unauthorized)?;
        Ok((self.start_session(user).await?, decision))
    }

    async fn start_session(&self, user: User) -> AppResult<SignedIn> {
        let token = random_hex();
        let at = now();
        let session = Session {
            id_hash: token_hash(&token),
            user: user.name.clone(),
            csrf: random_hex(),
            created_at: at,
            last_seen_at: at,
        };
        self.store.create_session(&session).await?;
        tracing::info!(user = %user.name, "signed in to the console");
        Ok(SignedIn {
            token,
            session: ConsoleSession {
                caller: caller_of(&user),
                csrf: session.csrf,
                user,
            },
        })
    }

    /// The session behind a cookie's token, if it is valid: not expired
    /// (idle or absolute) and its person still active.
    pub async fn console_session(&self, token: &str) -> AppResult<ConsoleSession> {
        let id_hash = token_hash(token);
        let session = self
            .store
            .get_session(&id_hash)
            .await?
            .ok_or(AppError::Unauthorized)?;
        let at = now();
        let idle = at - session.last_seen_at > self.config.session_idle;
        let old = at - session.created_at > self.config.session_absolute;
        if idle || old {
            self.store.delete_session(&id_hash).await?;
            return Err(AppError::Unauthorized);
        }
        let user = self
            .cached_user(&session.user)
            .await?
            .filter(User::is_active)
            .ok_or(AppError::Unauthorized)?;
        if at - session.last_seen_at > TOUCH_EVERY {
            self.store.touch_session(&id_hash, at).await?;
        }
        Ok(ConsoleSession {
            caller: caller_of(&user),
            csrf: session.csrf,
            user,
        })
    }

    pub async fn sign_out(&self, token: &str) -> AppResult<()> {
        self.store.delete_session(&token_hash(token)).await?;
        Ok(())
    }

    /// Deletes expired sessions (called from the sweeper now and then).
    pub(crate) async fn purge_sessions(&self) {
        let at = now();
        let result = self
            .store
            .delete_expired_sessions(
                at - self.config.session_idle,
                at - self.config.session_absolute,
            )
            .await;
        if let Err(e) = result {
            if let Some(repeats) = self.sweep_failures.admit(&e.to_string()) {
                tracing::warn!(error = %e, repeats, "session purge failed");
            }
        }
    }
}
