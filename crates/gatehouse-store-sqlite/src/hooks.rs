//! Private hooks for no-code tools.

use async_trait::async_trait;
use gatehouse_log::entry::KeyChange;
use gatehouse_store::hooks::{actions_json, hook_entry, hook_from, HookRecord, HOOK_COLUMNS};
use gatehouse_store::{HookStore, StoreError, StoreResult};
use rusqlite::params;

use crate::rows::{backend, query_all, query_one};
use crate::{log, SqliteStore};

#[async_trait]
impl HookStore for SqliteStore {
    async fn create_hook(&self, hook: &HookRecord) -> StoreResult<()> {
        let h = hook.clone();
        let actions = actions_json(&h.actions)?;
        self.writer
            .run(move |conn| {
                conn.execute(
                    &format!(
                        "INSERT INTO hooks ({HOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                    ),
                    params![
                        h.id,
                        h.name,
                        h.workflow,
                        actions,
                        h.secret,
                        h.created_by,
                        h.created_at_ms,
                        h.revoked_at_ms
                    ],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Duplicate
                    }
                    e => backend(e),
                })?;
                log::append(conn, &hook_entry(&h, KeyChange::Created, h.created_at_ms))?;
                Ok(())
            })
            .await
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<HookRecord>> {
        let id = id.to_string();
        self.read(move |c| {
            query_one(
                c,
                &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE id = ?1"),
                [id],
                hook_from,
            )
        })
        .await
    }

    async fn list_hooks(&self) -> StoreResult<Vec<HookRecord>> {
        self.read(|c| {
            query_all(
                c,
                &format!("SELECT {HOOK_COLUMNS} FROM hooks ORDER BY created_at_ms, id"),
                [],
                hook_from,
            )
        })
        .await
    }

    async fn revoke_hook(&self, id: &str, at_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.writer
            .run(move |conn| {
                let found = query_one(
                    conn,
                    &format!("SELECT {HOOK_COLUMNS} FROM hooks WHERE id = ?1"),
                    [&id],
                    hook_from,
                )?;
                let Some(hook) = found else {
                    return Ok(false);
                };
                if hook.revoked_at_ms.is_none() {
                    conn.execute(
                        "UPDATE hooks SET revoked_at_ms = ?2 WHERE id = ?1",
                        params![id, at_ms],
                    )
                    .map_err(backend)?;
                    log::append(conn, &hook_entry(&hook, KeyChange::Revoked, at_ms))?;
                }
                Ok(true)
            })
            .await
    }
}
