//! Private hooks for no-code tools.

use async_trait::async_trait;
use gatehouse_log::entry::KeyChange;
use gatehouse_store::hooks::{actions_json, hook_entry, hook_from, HookRecord, HOOK_COLUMNS};
use gatehouse_store::{HookStore, StoreError, StoreResult};

use crate::rows::{backend, is_unique_violation, map_all, map_one};
use crate::{log, PostgresStore};

#[async_trait]
impl HookStore for PostgresStore {
    async fn create_hook(&self, h: &HookRecord) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        sqlx::query(&format!(
            "INSERT INTO hooks ({HOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        ))
        .bind(&h.id)
        .bind(&h.name)
        .bind(&h.workflow)
        .bind(actions_json(&h.actions)?)
        .bind(&h.secret)
        .bind(&h.created_by)
        .bind(h.created_at_ms)
        .bind(h.revoked_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate
            } else {
                backend(e)
            }
        })?;
        log::append(&mut tx, &hook_entry(h, KeyChange::Created, h.created_at_ms)).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>> {
        let row = sqlx::query(&format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, hook_from)
    }

    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {HOOK_COLUMNS} FROM hooks ORDER BY created_at_ms, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        map_all(&rows, hook_from)
    }

    async fn revoke_hook(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let mut tx = self.logged_tx().await?;
        let row = sqlx::query(&format!(
            "UPDATE hooks SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL
             RETURNING {HOOK_COLUMNS}"
        ))
        .bind(id)
        .bind(at_ms)
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        match map_one(row, hook_from)? {
            Some(hook) => {
                log::append(&mut tx, &hook_entry(&hook, KeyChange::Revoked, at_ms)).await?;
                self.commit_logged(tx).await?;
                Ok(true)
            }
            // Already revoked (the first time stands) or no such hook.
            None => {
                drop(tx);
                Ok(self.get_hook(id).await?.is_some())
            }
        }
    }
}
