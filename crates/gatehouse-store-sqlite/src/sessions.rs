//! Console sessions.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_store::{Session, SessionStore, StoreResult};
use rusqlite::params;
use time::OffsetDateTime;

use crate::rows::{backend, query_one};
use crate::SqliteStore;

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create_session(&self, s: &Session) -> StoreResult<()> {
        let s = s.clone();
        self.writer
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO console_sessions (id_hash, user_name, csrf, created_at_ms, last_seen_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        s.id_hash,
                        s.user,
                        s.csrf,
                        to_unix_millis(s.created_at),
                        to_unix_millis(s.last_seen_at)
                    ],
                )
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn get_session(&self, id_hash: &str) -> StoreResult<Option<Session>> {
        let id_hash = id_hash.to_string();
        self.read(move |c| {
            query_one(
                c,
                "SELECT id_hash, user_name, csrf, created_at_ms, last_seen_at_ms
                 FROM console_sessions WHERE id_hash = ?1",
                [id_hash],
                |r| {
                    Ok(Session {
                        id_hash: r.text(0)?,
                        user: r.text(1)?,
                        csrf: r.text(2)?,
                        created_at: from_unix_millis(r.int(3)?),
                        last_seen_at: from_unix_millis(r.int(4)?),
                    })
                },
            )
        })
        .await
    }

    async fn touch_session(&self, id_hash: &str, at: OffsetDateTime) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.writer
            .run(move |conn| {
                conn.execute(
                    "UPDATE console_sessions SET last_seen_at_ms = ?2 WHERE id_hash = ?1",
                    params![id_hash, to_unix_millis(at)],
                )
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn delete_session(&self, id_hash: &str) -> StoreResult<()> {
        let id_hash = id_hash.to_string();
        self.writer
            .run(move |conn| {
                conn.execute("DELETE FROM console_sessions WHERE id_hash = ?1", [id_hash])
                    .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn delete_expired_sessions(
        &self,
        idle_before: OffsetDateTime,
        created_before: OffsetDateTime,
    ) -> StoreResult<u64> {
        self.writer
            .run(move |conn| {
                let n = conn
                    .execute(
                        "DELETE FROM console_sessions WHERE last_seen_at_ms < ?1 OR created_at_ms < ?2",
                        params![to_unix_millis(idle_before), to_unix_millis(created_before)],
                    )
                    .map_err(backend)?;
                Ok(n as u64)
            })
            .await
    }

    async fn create_sign_in_link(
        &self,
        id_hash: &str,
        user: &str,
        decision_id: &str,
        expires_at_ms: i64,
    ) -> StoreResult<()> {
        let (h, u, d) = (
            id_hash.to_string(),
            user.to_string(),
            decision_id.to_string(),
        );
        self.writer
            .run(move |tx| {
                tx.execute(
                    "INSERT INTO sign_in_links (id_hash, user_name, decision_id, expires_at_ms)
                     VALUES (?1, ?2, ?3, ?4)",
                    params![h, u, d, expires_at_ms],
                )
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn use_sign_in_link(
        &self,
        id_hash: &str,
        now_ms: i64,
    ) -> StoreResult<Option<(String, String)>> {
        let h = id_hash.to_string();
        self.writer
            .run(move |tx| {
                query_one(
                    tx,
                    "UPDATE sign_in_links SET used_at_ms = ?2
                     WHERE id_hash = ?1 AND used_at_ms IS NULL AND expires_at_ms > ?2
                     RETURNING user_name, decision_id",
                    params![h, now_ms],
                    |r| Ok((r.text(0)?, r.text(1)?)),
                )
            })
            .await
    }
}
