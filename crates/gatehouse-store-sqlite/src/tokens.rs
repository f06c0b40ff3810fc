//! Approval tokens and the keys that signed them.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{
    redemption_from_row, token_from_row, REDEMPTION_COLUMNS, TOKEN_COLUMNS,
};
use gatehouse_store::{IssuedToken, Redemption, StoreError, StoreResult, TokenStore};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::{backend, query_all, query_one};
use crate::{log, SqliteStore};

/// Stores a decision's token unless it has one; true if stored.
pub(crate) fn insert_token(conn: &Connection, t: &IssuedToken) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (decision_id) DO NOTHING",
        )
        .map_err(backend)?
        .execute(params![
            t.decision_id,
            t.jti,
            t.kid,
            t.unsigned,
            to_unix_millis(t.expires_at),
            to_unix_millis(t.created_at)
        ])
        .map_err(backend)?;
    if inserted > 0 {
        // Keeps the key in the JWKS until this token expires, even when a
        // server that has not yet seen a rotation signs with a retired key.
        conn.prepare_cached(
            "INSERT INTO token_key_expiry (kid, last_expires_at_ms) VALUES (?1, ?2)
             ON CONFLICT (kid) DO UPDATE SET last_expires_at_ms =
                 MAX(last_expires_at_ms, excluded.last_expires_at_ms)",
        )
        .map_err(backend)?
        .execute(params![t.kid, to_unix_millis(t.expires_at)])
        .map_err(backend)?;
    }
    Ok(inserted > 0)
}

fn find_token(conn: &Connection, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
    let sql = format!("SELECT {TOKEN_COLUMNS} FROM approval_tokens WHERE decision_id = ?1");
    query_one(conn, &sql, [decision_id], token_from_row)
}

#[async_trait]
impl TokenStore for SqliteStore {
    async fn issue_token(&self, token: &IssuedToken) -> StoreResult<IssuedToken> {
        let t = token.clone();
        let entry = t.log_entry();
        self.writer
            .run(move |conn| {
                if insert_token(conn, &t)? {
                    log::append(conn, &entry)?;
                    return Ok(t);
                }
                find_token(conn, &t.decision_id)?
                    .ok_or_else(|| StoreError::Corrupt("token vanished".into()))
            })
            .await
    }

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
        let id = decision_id.to_string();
        self.read(move |c| find_token(c, &id)).await
    }

    async fn redeem_token(&self, r: &Redemption) -> StoreResult<u64> {
        let r = r.clone();
        let at = from_unix_millis(to_unix_millis(r.at));
        self.writer
            .run(move |conn| {
                let used: Option<i64> = conn
                    .query_row("SELECT 1 FROM token_redemptions WHERE jti = ?1", params![r.jti], |row| {
                        row.get(0)
                    })
                    .optional()
                    .map_err(backend)?;
                if used.is_some() {
                    return Err(StoreError::AlreadyRedeemed);
                }
                let index = log::append(conn, &LogEntry::token_redeemed(&r.decision_id, &r.jti, &r.redeemed_by, at))?;
                conn.execute(
                    "INSERT INTO token_redemptions (jti, decision_id, redeemed_by, redeemed_at_ms, log_index)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![r.jti, r.decision_id, r.redeemed_by, to_unix_millis(at), index as i64],
                )
                .map_err(backend)?;
                Ok(index)
            })
            .await
    }

    async fn list_redemptions(&self, decision_id: &str) -> StoreResult<Vec<Redemption>> {
        let id = decision_id.to_string();
        self.read(move |c| {
            let sql = format!(
                "SELECT {REDEMPTION_COLUMNS} FROM token_redemptions WHERE decision_id = ?1 ORDER BY redeemed_at_ms, jti"
            );
            query_all(c, &sql, [id], redemption_from_row)
        })
        .await
    }

    async fn retire_token_key(
        &self,
        kid: &str,
        jwk_json: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (kid, jwk) = (kid.to_string(), jwk_json.to_string());
        let at = from_unix_millis(to_unix_millis(at));
        self.writer
            .run(move |conn| {
                let inserted = conn
                    .execute(
                        "INSERT INTO token_keys (kid, jwk, retired_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (kid) DO NOTHING",
                        params![kid, jwk, to_unix_millis(at)],
                    )
                    .map_err(backend)?;
                if inserted == 0 {
                    return Ok(false);
                }
                log::append(conn, &LogEntry::token_key_retired(&kid, at))?;
                Ok(true)
            })
            .await
    }

    async fn retired_token_keys_in_use(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        self.read(move |c| {
            query_all(
                c,
                "SELECT k.jwk FROM token_keys k JOIN token_key_expiry e ON e.kid = k.kid
                 WHERE e.last_expires_at_ms > ?1 ORDER BY k.kid",
                [now_ms],
                |r| r.text(0),
            )
        })
        .await
    }
}
