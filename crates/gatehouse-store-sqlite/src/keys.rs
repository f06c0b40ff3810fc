//! API keys.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::Role;
use gatehouse_log::entry::{KeyChange, LogEntry};
use gatehouse_store::sql::{active_admins_sql, key_from_row, KEY_COLUMNS};
use gatehouse_store::{ApiKey, KeyStore, StoreError, StoreResult};
use rusqlite::{params, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::{backend, query_all, query_one};
use crate::{log, SqliteStore};

#[async_trait]
impl KeyStore for SqliteStore {
    async fn create_key(&self, key: &ApiKey) -> StoreResult<()> {
        let k = key.clone();
        self.writer
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO api_keys (id, name, role, secret_hash, created_at_ms, revoked_at_ms, minted_by, user_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    params![
                        k.id,
                        k.name,
                        k.role.as_str(),
                        k.secret_hash,
                        to_unix_millis(k.created_at),
                        k.revoked_at.map(to_unix_millis),
                        k.minted_by,
                        k.user
                    ],
                )
                .map_err(backend)?;
                let entry = LogEntry::api_key(&k.id, KeyChange::Created, k.role, k.created_at);
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let id = id.to_string();
        self.read(move |c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE id = ?1");
            query_one(c, &sql, [id], key_from_row)
        })
        .await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.read(|c| {
            let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id");
            query_all(c, &sql, [], key_from_row)
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let id = id.to_string();
        let at = from_unix_millis(to_unix_millis(at));
        self.writer
            .run(move |conn| {
                let found: Option<(String, Option<i64>)> = conn
                    .query_row(
                        "SELECT role, revoked_at_ms FROM api_keys WHERE id = ?1",
                        params![id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(backend)?;
                let Some((role, revoked_at)) = found else {
                    return Ok(false);
                };
                // Revoking twice keeps the first time and logs nothing new.
                if revoked_at.is_none() {
                    // Never zero active admin keys: on the single writer, the
                    // count and the update cannot interleave with another.
                    if role == Role::Admin.as_str() {
                        let admins: i64 = conn
                            .query_row(&active_admins_sql(), [], |r| r.get(0))
                            .map_err(backend)?;
                        if admins <= 1 {
                            return Err(StoreError::LastAdmin);
                        }
                    }
                    conn.execute(
                        "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1",
                        params![id, to_unix_millis(at)],
                    )
                    .map_err(backend)?;
                    let role = Role::parse(&role).ok_or_else(|| {
                        StoreError::Corrupt(format!("key {id} has role {role:?}"))
                    })?;
                    log::append(conn, &LogEntry::api_key(&id, KeyChange::Revoked, role, at))?;
                }
                Ok(true)
            })
            .await
    }
}
