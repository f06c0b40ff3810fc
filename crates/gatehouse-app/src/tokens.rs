//! Signed approval tokens: issuing one per permitted decision, the keys
//! they are verified with, key replacement, and single-use redemption.

use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::{ids, Decision};
use gatehouse_log::entry::LogEntry;
use gatehouse_log::rules;
use gatehouse_store::{IssuedToken, Redemption, Role};
use gatehouse_token::{Claims, Expectation, TokenSigner};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};
use crate::integrity::Freshness;
use crate::telemetry;
use crate::{now, App, Caller};

/// The decision's leaf hash in the transparency log, hex: what an
/// inclusion proof for its `log_index` proves was logged, and what its
/// approval token's `dec` claim binds.
pub fn receipt_hash(d: &Decision) -> String {
    LogEntry::decision(d).leaf().hash_hex()
}

/// The action an executor is about to run, or has run, in the fields the
/// request carried.
#[derive(Debug, Clone, PartialEq)]
pub struct PresentedAction {
    /// The tool name (Gate API) or requested action (Decide API).
    pub action: String,
    pub subject: String,
    pub payload: Map<String, Value>,
}

impl PresentedAction {
    /// `sha256:` of the canonical action, as tokens and receipts bind it.
    pub fn hash(&self) -> String {
        gatehouse_core::action_hash(&self.action, &self.subject, &self.payload)
    }
}

/// A redeemed token: its claims and the log index of the redemption.
pub struct Redeemed {
    pub claims: Claims,
    pub log_index: u64,
}

impl App {
    /// The public keys approval tokens are verified with: the current key,
    /// and every retired key while a token it signed is still unexpired.
    pub async fn jwks(&self) -> AppResult<JwkSet> {
        let mut keys = vec![self.tokens.load().jwk().clone()];
        for text in self.store.retired_token_keys_in_use(now()).await? {
            let jwk: Jwk = serde_json::from_str(&text)
                .map_err(|e| AppError::Internal(format!("stored token key: {e}")))?;
            // A key put back in force after it was retired is listed once.
            if !keys.iter().any(|k| k.common.key_id == jwk.common.key_id) {
                keys.push(jwk);
            }
        }
        Ok(JwkSet { keys })
    }

    /// The key id approval tokens are signed with now.
    pub fn token_kid(&self) -> String {
        self.tokens.load().kid().to_string()
    }

    /// Signs approval tokens with `new` from now on. The key it replaces is
    /// recorded as retired first (a `key_event` in the log, unless `gatehouse
    /// keys rotate` recorded it already), so the JWKS keeps publishing it
    /// while tokens it signed are unexpired; if that fails, the old key stays
    /// in force. Returns whether the key changed.
    pub async fn replace_token_key(&self, new: Arc<TokenSigner>) -> AppResult<bool> {
        let old = self.tokens.load_full();
        if old.kid() == new.kid() {
            return Ok(false);
        }
        let jwk = serde_json::to_string(old.jwk()).map_err(AppError::internal)?;
        self.store.retire_token_key(old.kid(), &jwk, now()).await?;
        self.keep_retired_signer(old.clone());
        self.tokens.store(new.clone());
        tracing::info!(
            old = old.kid(),
            new = new.kid(),
            "approval tokens are now signed with a new key"
        );
        Ok(true)
    }

    /// Keeps a retired key's private half in memory, to sign again the
    /// stored tokens it issued (a store keeps tokens without signatures)
    /// while they live. Never used to issue new tokens.
    pub fn keep_retired_signer(&self, signer: Arc<TokenSigner>) {
        let mut retired = match self.retired_signers.write() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        retired.insert(signer.kid().to_string(), signer);
    }

    /// The whole token for a stored one: its signing input signed again by
    /// the key that issued it (the same bytes as issued: Ed25519 is
    /// deterministic). Fails closed when that key is no longer at hand.
    pub(crate) fn signed(&self, t: &IssuedToken) -> AppResult<String> {
        let current = self.tokens.load();
        if current.kid() == t.kid {
            return Ok(current.sign(&t.unsigned));
        }
        let retired = match self.retired_signers.read() {
            Ok(r) => r,
            Err(poisoned) => poisoned.into_inner(),
        };
        match retired.get(&t.kid) {
            Some(signer) => Ok(signer.sign(&t.unsigned)),
            None => Err(AppError::Internal(format!(
                "approval token {} was signed with key {}, which this server no longer holds \
                 (keep the previous key file beside the current one while its tokens live)",
                t.jti, t.kid
            ))),
        }
    }

    /// [`App::signed`] for a stored token whose row matches its log entry:
    /// claims edited in the database are refused (and the decision
    /// flagged), never signed.
    async fn signed_if_logged(
        &self,
        d: &Decision,
        state: &gatehouse_log::state::DecisionState,
        t: &IssuedToken,
    ) -> AppResult<String> {
        let found = crate::rows::token_row_disagreements(state, t);
        if !found.is_empty() {
            return Err(self.refuse_unsupported(d, &found.join("; ")).await);
        }
        self.signed(t)
    }

    /// The decision's approval token, issued the first time it is asked for
    /// and the same token afterwards. Only for decisions that permit the
    /// action, and only for the callers who act on them (the agent that
    /// asked, or an admin): reviewers and auditors never hold one.
    pub async fn approval_token(&self, caller: &Caller, d: &Decision) -> AppResult<Option<String>> {
        let acts =
            matches!(caller.role, Role::Agent | Role::Admin) && caller.may_read(&d.created_by);
        if !d.status.permits_action() || !acts {
            return Ok(None);
        }
        let state = self.supported(d, Freshness::Settled).await?;
        let stored = match self.store.get_token(&d.id).await? {
            Some(existing) => existing,
            None => {
                let token = self.new_token(d, receipt_hash(d))?;
                let stored = self.store.issue_token(&token).await?;
                if stored.jti == token.jti {
                    return self.signed(&stored).map(Some);
                }
                // Another request issued one first: the stored one counts,
                // once its log entry is read.
                let state = self.supported(d, Freshness::Current).await?;
                return self.signed_if_logged(d, &state, &stored).await.map(Some);
            }
        };
        // A settled state proven before the token was issued (on the first
        // read after an approval) does not show it yet: only the log as it
        // is now can refuse the stored token.
        let state = if crate::rows::token_row_disagreements(&state, &stored).is_empty() {
            state
        } else {
            self.supported(d, Freshness::Current).await?
        };
        self.signed_if_logged(d, &state, &stored).await.map(Some)
    }

    /// A new signed approval token for `d`, whose leaf hash is `receipt_hash`.
    pub(crate) fn new_token(&self, d: &Decision, receipt_hash: String) -> AppResult<IssuedToken> {
        let issued_at = now();
        let ttl = d
            .token_ttl_secs
            .map(Duration::from_secs)
            .unwrap_or(self.config.token_ttl);
        let expires_at = issued_at + ttl;
        let claims = Claims {
            sub: d.id.clone(),
            act: d.approved_action_hash(),
            dec: receipt_hash,
            aud: self.config.token_audience.clone(),
            jti: ids::token_id(),
            iat: issued_at.unix_timestamp(),
            nbf: issued_at.unix_timestamp(),
            exp: expires_at.unix_timestamp(),
        };
        // One load, so the kid recorded is the key that signed.
        let signer = self.tokens.load();
        let unsigned = signer.signing_input(&claims).map_err(AppError::internal)?;
        Ok(IssuedToken {
            claims_hash: gatehouse_log::entry::claims_hash(&claims),
            decision_id: d.id.clone(),
            jti: claims.jti,
            kid: signer.kid().to_string(),
            unsigned,
            expires_at,
            created_at: issued_at,
        })
    }

    /// Redeems an approval token for the action about to run: signature,
    /// time window, audience, action binding, the decision's state, and
    /// single use.
    pub async fn redeem(
        &self,
        caller: &Caller,
        token: &str,
        action: &PresentedAction,
    ) -> AppResult<Redeemed> {
        let result = self.redeem_checked(caller, token, action).await;
        telemetry::redemption(match &result {
            Ok(_) => "redeemed",
            Err(AppError::TokenAlreadyRedeemed) => "already_redeemed",
            Err(_) => "rejected",
        });
        result
    }

    async fn redeem_checked(
        &self,
        caller: &Caller,
        token: &str,
        action: &PresentedAction,
    ) -> AppResult<Redeemed> {
        caller.require(
            &[Role::Agent, Role::Admin, Role::Executor],
            "redeem approval tokens",
        )?;
        let presented = action.hash();
        let claims = gatehouse_token::verify(
            token,
            &self.jwks().await?,
            &Expectation {
                action_hash: &presented,
                audience: &self.config.token_audience,
                now: now().unix_timestamp(),
            },
        )
        .map_err(|e| AppError::TokenRejected(e.to_string()))?;
        let reject = |why: String| AppError::TokenRejected(why);
        let d = self
            .store
            .get_decision(&claims.sub)
            .await?
            .ok_or_else(|| reject(format!("decision {} does not exist", claims.sub)))?;
        // From here on, what counts is what the log says, not the row.
        let state = self.supported(&d, Freshness::Current).await?;
        // Redemption belongs to whoever runs the action: the key that asked,
        // or an executor key named for the token's audience.
        let entitled = state.created_by == caller.key_id
            || (caller.role == Role::Executor && caller.name == claims.aud);
        if !entitled {
            return Err(AppError::Forbidden {
                role: caller.role.as_str(),
                action: "redeem an approval token issued to another key (only the key that asked, or an executor key named for the token's audience, may)",
            });
        }
        match rules::redemption_refusal(&state, &claims.jti, Some(now().unix_timestamp())) {
            Some(why) if why == rules::REDEEMED => return Err(AppError::TokenAlreadyRedeemed),
            Some(why) => return Err(reject(why)),
            None => {}
        }
        let log_index = self
            .store
            .redeem_token(&Redemption {
                jti: claims.jti.clone(),
                decision_id: d.id,
                redeemed_by: caller.key_id.clone(),
                at: now(),
            })
            .await?;
        self.events.appended();
        Ok(Redeemed { claims, log_index })
    }

    /// The id of a token presented as evidence (in a receipt), or why it
    /// cannot be this decision's: its signature must verify with one of the
    /// published keys and it must be about `decision_id`. Its time window
    /// is not judged here: a receipt may be reported after the token it
    /// used has expired.
    pub(crate) async fn token_id_of(
        &self,
        token: &str,
        decision_id: &str,
    ) -> AppResult<Result<String, String>> {
        let claims = match gatehouse_token::verify_signature(token, &self.jwks().await?) {
            Ok(claims) => claims,
            Err(e) => return Ok(Err(format!("the approval token does not verify: {e}"))),
        };
        if claims.sub != decision_id {
            return Ok(Err(format!(
                "the approval token is for decision {}, not this one",
                claims.sub
            )));
        }
        Ok(Ok(claims.jti))
    }
}
