//! Console sessions.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_store::{Session, SessionStore, StoreResult};
use sqlx::Row;
use time::OffsetDateTime;

use crate::rows::backend;
use crate::PostgresStore;

#[async_trait]
impl SessionStore for PostgresStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO console_sessions (id_hash, user_name, csrf, created_at_ms, last_seen_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&s.id_hash)
        .bind(&s.user)
        .bind(&s.csrf)
        .bind(to_unix_millis(s.created_at))
        .bind(to_unix_millis(s.last_seen_at))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        let row = sqlx::query(
            "SELECT id_hash, user_name, csrf, created_at_ms, last_seen_at_ms
             FROM console_sessions WHERE id_hash = $1",
        )
        .bind(id_hash)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(Session {
                id_hash: r.try_get(0).map_err(backend)?,
                user: r.try_get(1).map_err(backend)?,
                csrf: r.try_get(2).map_err(backend)?,
                created_at: from_unix_millis(r.try_get(3).map_err(backend)?),
                last_seen_at: from_unix_millis(r.try_get(4).map_err(backend)?),
            })
        })
        .transpose()
    }

    async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> StoreResult<()> {
        sqlx::query("UPDATE console_sessions SET last_seen_at_ms = $2 WHERE id_hash = $1")
            .bind(id_hash)
            .bind(to_unix_millis(at))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        sqlx::query("DELETE FROM console_sessions WHERE id_hash = $1")
            .bind(id_hash)
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM console_sessions WHERE last_seen_at_ms < $1 OR created_at_ms < $2",
        )
        .bind(to_unix_millis(idle_before))
        .bind(to_unix_millis(created_before))
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(done.rows_affected())
    }

    async fn create_sign_in_link(
        &self,
        id_hash: &str,
        user: &str,
        decision_id: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO sign_in_links (id_hash, user_name, decision_id, expires_at_ms)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(id_hash)
        .bind(user)
        .bind(decision_id)
        .bind(expires_at_ms)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn use_sign_in_link(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<(String, String)>> {
        let row = sqlx::query(
            "UPDATE sign_in_links SET used_at_ms = $2
             WHERE id_hash = $1 AND used_at_ms IS NULL AND expires_at_ms > $2
             RETURNING user_name, decision_id",
        )
        .bind(id_hash)
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok((
                r.try_get(0).map_err(backend)?,
                r.try_get(1).map_err(backend)?,
            ))
        })
        .transpose()
    }
}
