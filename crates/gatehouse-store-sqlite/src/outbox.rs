//! The outbox (see `gatehouse_store::outbox`). Every write goes through the
//! single writer, so a claim needs no row locks.

use async_trait::async_trait;
use gatehouse_store::outbox::{
    attempt_from, claim_sql, delivery_from, finished, webhook_from, Delivery, DeliveryAttempt,
    DeliveryNext, DeliveryQuery, NewDelivery, OutboxStore, WebhookRecord, ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS, WEBHOOK_COLUMNS,
};
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::params;

use crate::rows::{backend, query_all, query_one};
use crate::SqliteStore;

fn numbered(i: usize) -> String {
    format!("?{i}")
}

fn index(i: u64) -> StoreResult<i64> {
    i64::try_from(i).map_err(|_| StoreError::Backend(format!("log index {i} out of range")))
}

#[async_trait]
impl OutboxStore for SqliteStore {
    async fn outbox_cursor(&self) -> StoreResult<u64> {
        self.read(|c| {
            let next = query_one(
                c,
                "SELECT next_index FROM outbox_cursor WHERE name = 'deliveries'",
                [],
                |r| r.int(0),
            )?
            .ok_or_else(|| StoreError::Corrupt("the outbox cursor is missing".into()))?;
            u64::try_from(next).map_err(|e| StoreError::Corrupt(e.to_string()))
        })
        .await
    }

    async fn enqueue_deliveries(
        &self,
        from: u64,
        to: u64,
        deliveries: Vec<NewDelivery>,
    ) -> StoreResult<bool> {
        let (from, to) = (index(from)?, index(to)?);
        self.writer
            .run(move |tx| {
                let moved = tx
                    .execute(
                        "UPDATE outbox_cursor SET next_index = ?2
                         WHERE name = 'deliveries' AND next_index = ?1",
                        params![from, to],
                    )
                    .map_err(backend)?;
                if moved == 0 {
                    return Ok(false);
                }
                let mut insert = tx
                    .prepare_cached(
                        "INSERT INTO deliveries (id, log_index, position, decision_id, event_type,
                             channel, target, payload, created_at_ms, next_attempt_at_ms, age_from_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?9)
                         ON CONFLICT (position, channel, target) DO NOTHING",
                    )
                    .map_err(backend)?;
                for d in &deliveries {
                    insert
                        .execute(params![
                            d.id,
                            index(d.log_index)?,
                            d.position,
                            d.decision_id,
                            d.event_type,
                            d.channel,
                            d.target,
                            d.payload,
                            d.created_at_ms
                        ])
                        .map_err(backend)?;
                }
                Ok(true)
            })
            .await
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        // Most polls find nothing due; asking a read connection first
        // keeps them off the writer, which decisions need.
        let due = self
            .read(move |c| {
                Ok(query_one(
                    c,
                    "SELECT 1 FROM deliveries INDEXED BY deliveries_due WHERE status = 'pending'
                     AND next_attempt_at_ms <= ?1 AND claimed_until_ms <= ?1 LIMIT 1",
                    [now_ms],
                    |_| Ok(()),
                )?
                .is_some())
            })
            .await?;
        if !due {
            return Ok(Vec::new());
        }
        self.writer
            .run(move |tx| {
                query_all(
                    tx,
                    &claim_sql(numbered, "INDEXED BY deliveries_due", ""),
                    params![now_ms, lease_until_ms, limit],
                    delivery_from,
                )
            })
            .await
    }

    async fn finish_deliveries(&self, done: &[(DeliveryAttempt, DeliveryNext)]) -> StoreResult<()> {
        let done = done.to_vec();
        self.writer
            .run(move |tx| {
                for (a, next) in &done {
                    tx.execute(
                        "INSERT OR REPLACE INTO delivery_attempts
                             (delivery_id, attempt, at_ms, duration_ms, status_code, error)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                        params![
                            a.delivery_id,
                            a.attempt,
                            a.at_ms,
                            a.duration_ms,
                            a.status_code,
                            a.error
                        ],
                    )
                    .map_err(backend)?;
                    let (status, next_at, delivered) = finished(next, a.at_ms);
                    tx.execute(
                        "UPDATE deliveries SET status = ?2,
                             next_attempt_at_ms = COALESCE(?3, next_attempt_at_ms),
                             claimed_until_ms = 0, last_attempt_at_ms = ?4,
                             last_status_code = ?5, last_error = ?6, delivered_at_ms = ?7
                         WHERE id = ?1",
                        params![
                            a.delivery_id,
                            status,
                            next_at,
                            a.at_ms,
                            a.status_code,
                            a.error,
                            delivered
                        ],
                    )
                    .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn retry_delivery(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| {
                let n = tx
                    .execute(
                        "UPDATE deliveries SET status = 'pending', attempts = 0,
                             next_attempt_at_ms = ?2, age_from_ms = ?2, claimed_until_ms = 0
                         WHERE id = ?1 AND status <> 'delivered'",
                        params![id, now_ms],
                    )
                    .map_err(backend)?;
                Ok(n == 1)
            })
            .await
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        let id = id.to_string();
        self.read(move |c| {
            query_one(
                c,
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
                [id],
                delivery_from,
            )
        })
        .await
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let q = q.clone();
        self.read(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {DELIVERY_COLUMNS} FROM deliveries
                     WHERE (?1 IS NULL OR decision_id = ?1) AND (?2 IS NULL OR status = ?2)
                       AND (?3 IS NULL OR id < ?3)
                     ORDER BY id DESC LIMIT ?4"
                ),
                params![
                    q.decision_id,
                    q.status.map(|s| s.as_str()),
                    q.before,
                    q.limit
                ],
                delivery_from,
            )
        })
        .await
    }

    async fn delivery_attempts(&self, id: &str) -> StoreResult<Vec<DeliveryAttempt>> {
        let id = id.to_string();
        self.read(move |c| {
            query_all(
                c,
                &format!(
                    "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts
                     WHERE delivery_id = ?1 ORDER BY at_ms, attempt"
                ),
                [id],
                attempt_from,
            )
        })
        .await
    }

    async fn put_notification_ref(
        &self,
        decision_id: &str,
        key: &str,
        value: &str,
    ) -> StoreResult<()> {
        let (d, k, v) = (decision_id.to_string(), key.to_string(), value.to_string());
        self.writer
            .run(move |tx| {
                tx.execute(
                    "INSERT INTO notification_refs (decision_id, ref_key, ref_value)
                     VALUES (?1, ?2, ?3)
                     ON CONFLICT (decision_id, ref_key) DO UPDATE SET ref_value = excluded.ref_value",
                    params![d, k, v],
                )
                .map_err(backend)?;
                Ok(())
            })
            .await
    }

    async fn notification_ref(&self, decision_id: &str, key: &str) -> StoreResult<Option<String>> {
        let (d, k) = (decision_id.to_string(), key.to_string());
        self.read(move |c| {
            query_one(
                c,
                "SELECT ref_value FROM notification_refs WHERE decision_id = ?1 AND ref_key = ?2",
                [d, k],
                |r| r.text(0),
            )
        })
        .await
    }

    async fn create_webhook(&self, w: &WebhookRecord) -> StoreResult<()> {
        let w = w.clone();
        let events =
            serde_json::to_string(&w.events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.writer
            .run(move |tx| {
                tx.execute(
                    &format!(
                        "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
                    ),
                    params![w.id, w.url, w.secret, events, w.created_by, w.created_at_ms],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        StoreError::Duplicate
                    }
                    e => backend(e),
                })?;
                Ok(())
            })
            .await
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        self.read(|c| {
            query_all(
                c,
                &format!("SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at_ms, id"),
                [],
                webhook_from,
            )
        })
        .await
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_string();
        self.writer
            .run(move |tx| {
                let n = tx
                    .execute("DELETE FROM webhooks WHERE id = ?1", [id])
                    .map_err(backend)?;
                Ok(n == 1)
            })
            .await
    }
}
