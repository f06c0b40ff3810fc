//! People and groups: reviewer, auditor and admin accounts, their
//! passwords (Argon2id), and signing in with one.
//!
//! Names and groups are restricted to a small alphabet: group names are
//! listed with commas in policy annotations (`@reviewers("finance,legal")`)
//! and both show up in URLs, logs and the console.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
pub use gatehouse_store::User;
use gatehouse_store::{Role, StoreError, UserUpdate};

use crate::error::{AppError, AppResult};
use crate::{now, App, Caller};

/// The longest user or group name.
pub const MAX_NAME: usize = 64;
const MIN_PASSWORD: usize = 8;
const MAX_PASSWORD: usize = 1024;
const MAX_EMAIL: usize = 254;
const MAX_GROUPS: usize = 64;

/// What it takes to create a user.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub role: Role,
    pub groups: Vec<String>,
    pub email: Option<String>,
    pub password: String,
    /// Linked as the person's Slack identity when given.
    pub slack_user_id: Option<String>,
}

/// The identity provider name Slack user ids are linked under.
pub const SLACK: &str = "slack";

/// Slack user ids: `U` or `W` and upper-case letters and digits.
pub fn check_slack_user_id(id: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&id.len())
        && (id.starts_with('U') || id.starts_with('W'))
        && id
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("{id:?} is not a Slack user id (like U012AB3CD)"))
    }
}

/// Whether `name` is a valid user or group name: 1 to 64 characters,
/// letters, digits, `.`, `_`, `-` (and `@` for users), starting with a
/// letter or digit.
fn valid_name(name: &str, extra: &[char]) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && name.chars().count() <= MAX_NAME
        && chars.all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') || extra.contains(&c)
        })
}

pub fn check_user_name(name: &str) -> AppResult<()> {
    if valid_name(name, &['@']) {
        Ok(())
    } else {
        Err(AppError::Validation(format!(
            "user name {name:?} must be 1 to {MAX_NAME} letters, digits, '.', '_', '-' or '@', starting with a letter or digit"
        )))
    }
}

pub fn check_group_name(group: &str) -> AppResult<()> {
    if valid_name(group, &[]) {
        Ok(())
    } else {
        Err(AppError::Validation(format!(
            "group name {group:?} must be 1 to {MAX_NAME} letters, digits, '.', '_' or '-', starting with a letter or digit"
        )))
    }
}

/// Checks each group name and returns them sorted, without repeats.
pub fn groups(raw: Vec<String>) -> AppResult<Vec<String>> {
    if raw.len() > MAX_GROUPS {
        return Err(AppError::Validation(format!(
            "a user may belong to at most {MAX_GROUPS} groups"
        )));
    }
    let mut groups = raw;
    for g in &groups {
        check_group_name(g)?;
    }
    groups.sort();
    groups.dedup();
    Ok(groups)
}

/// Only people who review, audit or administer have accounts; agents and
/// executors are programs with keys.
pub fn check_user_role(role: Role) -> AppResult<()> {
    match role {
        Role::Reviewer | Role::Auditor | Role::Admin => Ok(()),
        other => Err(AppError::Validation(format!(
            "a user's role must be reviewer, auditor or admin, not {}",
            other.as_str()
        ))),
    }
}

/// Argon2id (the crate's defaults: 19 MiB, 2 passes, OWASP's minimum) in
/// PHC string form, with a fresh random salt.
pub fn hash_password(password: &str) -> AppResult<String> {
    let n = password.chars().count();
    if !(MIN_PASSWORD..=MAX_PASSWORD).contains(&n) {
        return Err(AppError::Validation(format!(
            "a password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters"
        )));
    }
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

/// Whether `password` matches the PHC string `hash` (in constant time;
/// a malformed hash never matches).
pub fn password_matches(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash of a password nobody has, checked when the user does not exist
/// so that a failed sign-in takes as long either way.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(b"decoy password nobody has", &salt)
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

/// A user ready to store: every field checked, the password hashed.
pub fn prepare_user(new: NewUser) -> AppResult<User> {
    check_user_name(&new.name)?;
    check_user_role(new.role)?;
    if let Some(email) = &new.email {
        let plausible = email.len() <= MAX_EMAIL
            && email
                .split_once('@')
                .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty())
            && !email.chars().any(|c| c.is_whitespace() || c.is_control());
        if !plausible {
            return Err(AppError::Validation(format!(
                "email {email:?} is not an address like name@example.com"
            )));
        }
    }
    Ok(User {
        name: new.name,
        role: new.role,
        email: new.email,
        groups: groups(new.groups)?,
        password_hash: hash_password(&new.password)?,
        created_at: now(),
        disabled_at: None,
    })
}

/// Hashing takes tens of milliseconds of CPU: off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(AppError::internal)
}

fn user_error(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::NotFound("user"),
        StoreError::Duplicate => AppError::AlreadyExists("a user with this name exists".into()),
        other => other.into(),
    }
}

impl App {
    pub async fn create_user(&self, caller: &Caller, new: NewUser) -> AppResult<User> {
        caller.require(&[Role::Admin], "manage users")?;
        let slack = new.slack_user_id.clone();
        if let Some(id) = &slack {
            check_slack_user_id(id).map_err(AppError::Validation)?;
        }
        let user = blocking(move || prepare_user(new)).await??;
        self.store.create_user(&user).await.map_err(user_error)?;
        if let Some(id) = &slack {
            self.store.set_identity(SLACK, id, Some(&user.name)).await?;
        }
        self.groups.clear();
        Ok(user)
    }

    /// Links a Slack user id to a person: clicks in Slack by that Slack
    /// user are that person's reviews. A Slack id links to one person.
    pub async fn link_slack(
        &self,
        caller: &Caller,
        name: &str,
        slack_user_id: &str,
    ) -> AppResult<()> {
        caller.require(&[Role::Admin], "manage users")?;
        check_slack_user_id(slack_user_id).map_err(AppError::Validation)?;
        self.store
            .get_user(name)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        Ok(self
            .store
            .set_identity(SLACK, slack_user_id, Some(name))
            .await?)
    }

    /// The active person behind a Slack user: the one linked to the Slack
    /// id, otherwise the one active user whose email is the Slack
    /// profile's (when Slack shared it).
    pub async fn person_for_slack(
        &self,
        slack_user_id: &str,
        email: Option<&str>,
    ) -> AppResult<Option<User>> {
        if let Some(name) = self.store.user_by_identity(SLACK, slack_user_id).await? {
            return Ok(self.store.get_user(&name).await?.filter(User::is_active));
        }
        let Some(email) = email.map(str::to_ascii_lowercase) else {
            return Ok(None);
        };
        let matching: Vec<User> = self
            .store
            .list_users()
            .await?
            .into_iter()
            .filter(|u| {
                u.is_active()
                    && u.email.as_deref().map(str::to_ascii_lowercase) == Some(email.clone())
            })
            .collect();
        // Two people sharing an address is no one in particular.
        Ok(if matching.len() == 1 {
            matching.into_iter().next()
        } else {
            None
        })
    }

    pub async fn list_users(&self, caller: &Caller) -> AppResult<Vec<User>> {
        caller.require(&[Role::Admin], "manage users")?;
        Ok(self.store.list_users().await?)
    }

    pub async fn get_user(&self, caller: &Caller, name: &str) -> AppResult<User> {
        caller.require(&[Role::Admin], "manage users")?;
        self.store
            .get_user(name)
            .await?
            .ok_or(AppError::NotFound("user"))
    }

    /// Disables a user: they can no longer sign in, and their keys stop
    /// working within the key cache's lifetime.
    pub async fn disable_user(&self, caller: &Caller, name: &str) -> AppResult<User> {
        self.update_user(caller, name, UserUpdate::Disable).await
    }

    pub async fn set_user_groups(
        &self,
        caller: &Caller,
        name: &str,
        new_groups: Vec<String>,
    ) -> AppResult<User> {
        let new_groups = groups(new_groups)?;
        self.update_user(caller, name, UserUpdate::Groups(new_groups))
            .await
    }

    pub async fn set_user_password(
        &self,
        caller: &Caller,
        name: &str,
        password: String,
    ) -> AppResult<User> {
        caller.require(&[Role::Admin], "manage users")?;
        let hash = blocking(move || hash_password(&password)).await??;
        self.update_user(caller, name, UserUpdate::Password(hash))
            .await
    }

    async fn update_user(
        &self,
        caller: &Caller,
        name: &str,
        update: UserUpdate,
    ) -> AppResult<User> {
        caller.require(&[Role::Admin], "manage users")?;
        let user = self
            .store
            .update_user(name, &update, now())
            .await
            .map_err(user_error)?;
        self.users.forget(name);
        // Membership changed: owner routing asks the store again.
        self.groups.clear();
        Ok(user)
    }

    /// The active user with this name and password, for signing in. Any
    /// failure is the same `Unauthorized`, and an unknown name costs the
    /// same hashing as a wrong password, so neither reveals who exists.
    pub async fn check_password(&self, name: &str, password: &str) -> AppResult<User> {
        let user = self.store.get_user(name).await?;
        let hash = user
            .as_ref()
            .map_or_else(|| decoy_hash().to_string(), |u| u.password_hash.clone());
        let password = password.to_string();
        let matches = blocking(move || password_matches(&hash, &password)).await?;
        match user {
            Some(u) if matches && u.is_active() => Ok(u),
            _ => Err(AppError::Unauthorized),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_groups() {
        assert!(check_user_name("ana.lima@acme").is_ok());
        assert!(check_user_name("-ana").is_err());
        assert!(check_user_name("ana lima").is_err());
        assert!(check_group_name("finance-leads").is_ok());
        assert!(check_group_name("finance,legal").is_err());
        assert!(check_group_name(&"g".repeat(65)).is_err());
        assert_eq!(
            groups(vec!["legal".into(), "finance".into(), "legal".into()]).unwrap(),
            vec!["finance".to_string(), "legal".to_string()]
        );
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(password_matches(&hash, "correct horse"));
        assert!(!password_matches(&hash, "correct hors"));
        assert!(!password_matches("not a hash", "correct horse"));
        assert!(hash_password("short").is_err());
    }
}
