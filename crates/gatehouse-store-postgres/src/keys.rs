//! API keys.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::Role;
use gatehouse_log::entry::{KeyChange, LogEntry};
use gatehouse_store::sql::{active_admins_sql, key_from_row, KEY_COLUMNS};
use gatehouse_store::{ApiKey, KeyStore, StoreError, StoreResult};
use time::OffsetDateTime;

use crate::rows::{backend, map_all, map_one};
use crate::{log, PostgresStore};

#[async_trait]
impl KeyStore for PostgresStore {
    async fn create_key(&self, k: &ApiKey) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_at_ms, revoked_at_ms, minted_by, user_name)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.role.as_str())
        .bind(&k.secret_hash)
        .bind(to_unix_millis(k.created_at))
        .bind(k.revoked_at.map(to_unix_millis))
        .bind(&k.minted_by)
        .bind(&k.user)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let entry = LogEntry::api_key(&k.id, KeyChange::Created, k.role, k.created_at);
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, key_from_row)
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
        let rows = sqlx::query(&sql)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(&rows, key_from_row)
    }

    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let at = from_unix_millis(to_unix_millis(at));
        // Under the log lock, so no other revocation counts the admins at the
        // same time: never zero active admin keys.
        let mut tx = self.logged_tx().await?;
        let role: Option<String> =
            sqlx::query_scalar("SELECT role FROM api_keys WHERE id = $1 AND revoked_at_ms IS NULL")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if role.as_deref() == Some(Role::Admin.as_str()) {
            let admins: i64 = sqlx::query_scalar(&active_admins_sql())
                .fetch_one(&mut *tx)
                .await
                .map_err(backend)?;
            if admins <= 1 {
                return Err(StoreError::LastAdmin);
            }
        }
        let revoked: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL RETURNING role",
        )
        .bind(id)
        .bind(to_unix_millis(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        match revoked {
            Some(role) => {
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("key {id} has role {role:?}")))?;
                log::append(
                    &mut tx,
                    &LogEntry::api_key(id, KeyChange::Revoked, role, at),
                )
                .await?;
                self.commit_logged(tx).await?;
                Ok(true)
            }
            // Already revoked (the first time stands) or no such key.
            None => {
                drop(tx);
                Ok(self.get_key(id).await?.is_some())
            }
        }
    }
}
