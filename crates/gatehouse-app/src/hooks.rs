//! Private hooks for no-code tools. A tool such as n8n, Zapier or Make
//! posts a Decide request to `/hooks/{id}` with the hook's secret (or an
//! HMAC of the body made with it) instead of holding an API key: the hook
//! can ask about one workflow's listed actions and nothing else, never
//! read, review or redeem. Adapters turn the decision into a route
//! instruction (proceed, block, review).

use gatehouse_core::{ids, ActionRequest, Role, Status};
use gatehouse_store::hooks::HookRecord;
use gatehouse_store::StoreError;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use subtle::ConstantTimeEq;

use crate::decide::Decided;
use crate::error::{AppError, AppResult};
use crate::{App, Caller};
use gatehouse_core::decision::now_unix_millis;

/// Every hook secret starts with this, so a leaked one is recognisable.
pub const SECRET_PREFIX: &str = "ghh_";
/// The longest name, workflow or action a hook is scoped by.
const MAX_NAME: usize = 64;
const MAX_SCOPE: usize = 200;
const MAX_ACTIONS: usize = 50;

/// A hook just created, with its secret (shown once).
pub struct NewHook {
    pub hook: HookRecord,
    pub secret: String,
}

/// How a call proves it holds the hook's secret.
pub enum HookCredential<'a> {
    /// The secret itself (a header).
    Secret(&'a str),
    /// `sha256=<hex>`: HMAC-SHA256 of the raw body with the secret.
    Signature { signature: &'a str, body: &'a [u8] },
}

/// What a no-code tool should do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    Proceed,
    Block,
    Review,
}

impl Route {
    /// From the decision's current status, so that a step retried with
    /// the same `Idempotency-Key` after a review learns the outcome:
    /// approved proceeds, rejected or expired blocks.
    pub fn of(status: Status) -> Route {
        match status {
            Status::Allow | Status::Approved => Route::Proceed,
            Status::Reject | Status::Rejected | Status::Expired => Route::Block,
            Status::PendingReview => Route::Review,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Route::Proceed => "proceed",
            Route::Block => "block",
            Route::Review => "review",
        }
    }
}

/// Checks a hook's scope and makes its record with a fresh id and secret;
/// `created_by` is the key id that creates it (`cli` from the CLI).
pub fn new_hook(
    name: &str,
    workflow: &str,
    actions: &[String],
    created_by: &str,
    now_ms: i64,
) -> AppResult<NewHook> {
    let invalid = |m: String| Err(AppError::Validation(m));
    let name_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(name_ok) {
        return invalid(format!(
            "name: 1 to {MAX_NAME} letters, digits, '-', '_' or '.' (got {name:?})"
        ));
    }
    let scope_ok = |s: &str| {
        !s.trim().is_empty() && s.chars().count() <= MAX_SCOPE && !s.chars().any(char::is_control)
    };
    if !scope_ok(workflow) {
        return invalid(format!(
            "workflow: 1 to {MAX_SCOPE} characters, no control characters"
        ));
    }
    if actions.is_empty() || actions.len() > MAX_ACTIONS {
        return invalid(format!("actions: 1 to {MAX_ACTIONS} actions"));
    }
    for (i, a) in actions.iter().enumerate() {
        if !scope_ok(a) {
            return invalid(format!(
                "actions: {a:?} is not 1 to {MAX_SCOPE} characters without control characters"
            ));
        }
        if actions[..i].contains(a) {
            return invalid(format!("actions: {a:?} is listed twice"));
        }
    }
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
    Ok(NewHook {
        hook: HookRecord {
            id: ids::hook_id(),
            name: name.to_string(),
            workflow: workflow.to_string(),
            actions: actions.to_vec(),
            secret: secret.clone(),
            created_by: created_by.to_string(),
            created_at_ms: now_ms,
            revoked_at_ms: None,
        },
        secret,
    })
}

/// Whether `credential` proves knowledge of `secret`, in constant time.
pub fn credential_matches(secret: &str, credential: &HookCredential<'_>) -> bool {
    match credential {
        HookCredential::Secret(given) => bool::from(given.as_bytes().ct_eq(secret.as_bytes())),
        HookCredential::Signature { signature, body } => {
            let Some(hex_mac) = signature.trim().strip_prefix("sha256=") else {
                return false;
            };
            let Ok(mac_bytes) = hex::decode(hex_mac) else {
                return false;
            };
            let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
                return false;
            };
            mac.update(body);
            mac.verify_slice(&mac_bytes).is_ok()
        }
    }
}

/// The caller a hook acts as: an agent that can only create decisions,
/// named apart from keys so that no key can pass for it.
pub fn hook_caller(hook: &HookRecord) -> Caller {
    Caller::key(&hook.id, &format!("hook:{}", hook.name), Role::Agent)
}

impl App {
    pub async fn create_hook(
        &self,
        caller: &Caller,
        name: &str,
        workflow: &str,
        actions: &[String],
    ) -> AppResult<NewHook> {
        caller.require(&[Role::Admin], "manage hooks")?;
        let new = new_hook(name, workflow, actions, &caller.key_id, now_unix_millis())?;
        match self.store.create_hook(&new.hook).await {
            Ok(()) => Ok(new),
            Err(StoreError::Duplicate) => Err(AppError::AlreadyExists(format!(
                "a hook named {name:?} exists already"
            ))),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn list_hooks(&self, caller: &Caller) -> AppResult<Vec<HookRecord>> {
        caller.require(&[Role::Admin], "manage hooks")?;
        Ok(self.store.list_hooks().await?)
    }

    pub async fn revoke_hook(&self, caller: &Caller, id: &str) -> AppResult<HookRecord> {
        caller.require(&[Role::Admin], "manage hooks")?;
        if !self.store.revoke_hook(id, now_unix_millis()).await? {
            return Err(AppError::NotFound("hook"));
        }
        self.store
            .get_hook(id)
            .await?
            .ok_or(AppError::NotFound("hook"))
    }

    /// The hook a call is for, once its credential is checked; unknown,
    /// revoked and wrongly signed alike are `HookUnauthorized`, so a
    /// caller cannot tell which hooks exist. Spends one request from the
    /// hook's own rate bucket.
    pub async fn authenticate_hook(
        &self,
        id: &str,
        credential: Option<HookCredential<'_>>,
    ) -> AppResult<HookRecord> {
        let hook = self.store.get_hook(id).await?;
        let Some(hook) = hook.filter(|h| h.revoked_at_ms.is_none()) else {
            return Err(AppError::HookUnauthorized);
        };
        match credential {
            Some(c) if credential_matches(&hook.secret, &c) => {}
            _ => return Err(AppError::HookUnauthorized),
        }
        self.check_rate(&hook.id)?;
        Ok(hook)
    }

    /// A decision asked through a hook: only for the hook's workflow and
    /// actions; anything else is refused before it is evaluated or stored.
    pub async fn hook_decide(
        &self,
        hook: &HookRecord,
        request: ActionRequest,
        idempotency_key: Option<String>,
    ) -> AppResult<Decided> {
        if request.agent != hook.workflow {
            return Err(AppError::OutOfScope(format!(
                "hook {} may only ask for workflow {:?}, not {:?}",
                hook.name, hook.workflow, request.agent
            )));
        }
        if !hook.actions.contains(&request.action) {
            return Err(AppError::OutOfScope(format!(
                "hook {} may only ask for the actions {}, not {:?}",
                hook.name,
                hook.actions
                    .iter()
                    .map(|a| format!("{a:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                request.action
            )));
        }
        self.decide(&hook_caller(hook), request, idempotency_key)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_is_an_hmac_of_the_exact_body() {
        let secret = "ghh_0123";
        let body = br#"{"question":"q"}"#;
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
        mac.update(body);
        let good = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        let sig = |s: &str, b: &[u8]| {
            credential_matches(
                secret,
                &HookCredential::Signature {
                    signature: s,
                    body: b,
                },
            )
        };
        assert!(sig(&good, body));
        assert!(!sig(&good, br#"{"question":"Q"}"#), "another body");
        assert!(!sig(&good.replace("sha256=", ""), body), "no scheme");
        assert!(!sig("sha256=zz", body), "not hex");
        assert!(credential_matches(
            secret,
            &HookCredential::Secret("ghh_0123")
        ));
        assert!(!credential_matches(
            secret,
            &HookCredential::Secret("ghh_012")
        ));
    }

    #[test]
    fn scopes_are_checked_when_a_hook_is_made() {
        let acts = |a: &[&str]| a.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let ok = new_hook(
            "n8n-discounts",
            "billing",
            &acts(&["apply_discount"]),
            "cli",
            1,
        )
        .unwrap();
        assert!(ok.secret.starts_with(SECRET_PREFIX) && ok.secret.len() == 4 + 64);
        assert_eq!(ok.hook.secret, ok.secret);
        for (name, workflow, actions) in [
            ("", "billing", acts(&["a"])),
            ("has space", "billing", acts(&["a"])),
            ("n", " ", acts(&["a"])),
            ("n", "billing", acts(&[])),
            ("n", "billing", acts(&["a", "a"])),
            ("n", "billing", acts(&["bad\u{7}"])),
        ] {
            assert!(
                matches!(
                    new_hook(name, workflow, &actions, "cli", 1),
                    Err(AppError::Validation(_))
                ),
                "{name:?} {workflow:?} {actions:?}"
            );
        }
    }
}
