//! Approval tokens and the keys that signed them. Redemption is checked
//! and recorded under the log lock, so two replicas cannot both redeem.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{
    redemption_from_row, token_from_row, REDEMPTION_COLUMNS, TOKEN_COLUMNS,
};
use gatehouse_store::{IssuedToken, Redemption, StoreError, StoreResult, TokenStore};
use time::OffsetDateTime;

use crate::rows::{backend, map_all, map_one};
use crate::{log, PostgresStore};

#[async_trait]
impl TokenStore for PostgresStore {
    async fn issue_token(&self, t: &IssuedToken) -> StoreResult<IssuedToken> {
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (decision_id) DO NOTHING",
        )
        .bind(&t.decision_id)
        .bind(&t.jti)
        .bind(&t.kid)
        .bind(&t.unsigned)
        .bind(to_unix_millis(t.expires_at))
        .bind(to_unix_millis(t.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            drop(tx);
            return self
                .get_token(&t.decision_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("token vanished".into()));
        }
        let entry = t.log_entry();
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await?;
        Ok(t.clone())
    }

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM approval_tokens WHERE decision_id = $1");
        let row = sqlx::query(&sql)
            .bind(decision_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, token_from_row)
    }

    async fn redeem_token(&self, r: &Redemption) -> StoreResult<u64> {
        let at = from_unix_millis(to_unix_millis(r.at));
        // Under the log lock, so the check and the insert cannot interleave
        // with another replica's redemption of the same token.
        let mut tx = self.logged_tx().await?;
        let used: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM token_redemptions WHERE jti = $1")
                .bind(&r.jti)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if used.is_some() {
            return Err(StoreError::AlreadyRedeemed);
        }
        let entry = LogEntry::token_redeemed(&r.decision_id, &r.jti, &r.redeemed_by, at);
        let index = log::append(&mut tx, &entry).await?;
        sqlx::query(
            "INSERT INTO token_redemptions (jti, decision_id, redeemed_by, redeemed_at_ms, log_index)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.jti)
        .bind(&r.decision_id)
        .bind(&r.redeemed_by)
        .bind(to_unix_millis(at))
        .bind(index as i64)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        self.commit_logged(tx).await?;
        Ok(index)
    }

    async fn list_redemptions(&self, decision_id: &str) -> StoreResult<Vec<Redemption>> {
        let sql = format!(
            "SELECT {REDEMPTION_COLUMNS} FROM token_redemptions WHERE decision_id = $1 ORDER BY redeemed_at_ms, jti"
        );
        let rows = sqlx::query(&sql)
            .bind(decision_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(&rows, redemption_from_row)
    }

    async fn retire_token_key(
        &self,
        kid: &str,
        jwk_json: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let at = from_unix_millis(to_unix_millis(at));
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query("INSERT INTO token_keys (kid, jwk, retired_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING")
            .bind(kid)
            .bind(jwk_json)
            .bind(to_unix_millis(at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if inserted == 0 {
            // Retired before: the transaction rolls back as it is dropped.
            return Ok(false);
        }
        log::append(&mut tx, &LogEntry::token_key_retired(kid, at)).await?;
        self.commit_logged(tx).await.map(|_| true)
    }

    async fn retired_token_keys_in_use(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT k.jwk FROM token_keys k WHERE EXISTS
               (SELECT 1 FROM approval_tokens t WHERE t.kid = k.kid AND t.expires_at_ms > $1)
             ORDER BY k.kid",
        )
        .bind(to_unix_millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }
}
