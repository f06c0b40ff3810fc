//! The outbox (see `gatehouse_store::outbox`). Replicas share it: the
//! cursor moves by compare-and-set, and a claim skips rows another
//! replica has locked, so each due delivery is claimed once per attempt.

use async_trait::async_trait;
use gatehouse_store::outbox::{
    attempt_from, claim_sql, delivery_from, finished, webhook_from, Delivery, DeliveryAttempt,
    DeliveryNext, DeliveryQuery, NewDelivery, OutboxStore, WebhookRecord, ATTEMPT_COLUMNS,
    DELIVERY_COLUMNS, WEBHOOK_COLUMNS,
};
use gatehouse_store::{StoreError, StoreResult};
use sqlx::Row;

use crate::rows::{backend, is_unique_violation, map_all, map_one};
use crate::PostgresStore;

fn dollar(i: usize) -> String {
    format!("${i}")
}

fn index(i: u64) -> StoreResult<i64> {
    i64::try_from(i).map_err(|_| StoreError::Backend(format!("log index {i} out of range")))
}

impl PostgresStore {
    /// A transaction for the outbox's own bookkeeping, committed without
    /// waiting for the disk (`synchronous_commit = off`): decisions keep
    /// their durable commits and the disk's flushes to themselves. What a
    /// crash can lose is safe to lose: a cursor move and its deliveries
    /// vanish together and are fanned out again from the log; a lost
    /// claim or attempt record means the delivery is attempted again (at
    /// least once).
    async fn outbox_tx(&self) -> StoreResult<sqlx::Transaction<'static, sqlx::Postgres>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("SET LOCAL synchronous_commit = off")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        Ok(tx)
    }
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn outbox_cursor(&self) -> StoreResult<u64> {
        let next: i64 =
            sqlx::query_scalar("SELECT next_index FROM outbox_cursor WHERE name = 'deliveries'")
                .fetch_optional(&self.pool)
                .await
                .map_err(backend)?
                .ok_or_else(|| StoreError::Corrupt("the outbox cursor is missing".into()))?;
        u64::try_from(next).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    async fn enqueue_deliveries(
        &self,
        from: u64,
        to: u64,
        deliveries: Vec<NewDelivery>,
    ) -> StoreResult<bool> {
        let mut tx = self.outbox_tx().await?;
        let moved = sqlx::query(
            "UPDATE outbox_cursor SET next_index = $2 WHERE name = 'deliveries' AND next_index = $1",
        )
        .bind(index(from)?)
        .bind(index(to)?)
        .execute(&mut *tx)
        .await
        .map_err(backend)?
        .rows_affected();
        if moved == 0 {
            return Ok(false);
        }
        if !deliveries.is_empty() {
            // One statement for the whole page, whatever its size.
            let mut cols: [Vec<String>; 7] = Default::default();
            let (mut indexes, mut positions, mut created) = (vec![], vec![], vec![]);
            for d in deliveries {
                indexes.push(index(d.log_index)?);
                positions.push(d.position);
                created.push(d.created_at_ms);
                for (col, v) in cols.iter_mut().zip([
                    d.id,
                    d.decision_id,
                    d.event_type,
                    d.channel,
                    d.target,
                    d.payload,
                    String::new(),
                ]) {
                    col.push(v);
                }
            }
            let [ids, decisions, types, channels, targets, payloads, _] = cols;
            sqlx::query(
                "INSERT INTO deliveries (id, log_index, position, decision_id, event_type, channel,
                     target, payload, created_at_ms, next_attempt_at_ms, age_from_ms)
                 SELECT id, li, pos, dec, et, ch, tg, pl, ca, ca, ca
                 FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[],
                             $6::text[], $7::text[], $8::text[], $9::bigint[])
                      AS t(id, li, pos, dec, et, ch, tg, pl, ca)
                 ON CONFLICT (position, channel, target) DO NOTHING",
            )
            .bind(ids)
            .bind(indexes)
            .bind(positions)
            .bind(decisions)
            .bind(types)
            .bind(channels)
            .bind(targets)
            .bind(payloads)
            .bind(created)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        Ok(true)
    }

    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>> {
        let mut tx = self.outbox_tx().await?;
        let rows = sqlx::query(&claim_sql(dollar, "", "FOR UPDATE SKIP LOCKED"))
            .bind(now_ms)
            .bind(lease_until_ms)
            .bind(i64::from(limit))
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        tx.commit().await.map_err(backend)?;
        map_all(&rows, delivery_from)
    }

    async fn finish_deliveries(&self, done: &[(DeliveryAttempt, DeliveryNext)]) -> StoreResult<()> {
        if done.is_empty() {
            return Ok(());
        }
        let (mut ids, mut attempts, mut at, mut took) = (vec![], vec![], vec![], vec![]);
        let (mut codes, mut errors, mut statuses) = (vec![], vec![], vec![]);
        let (mut next_ats, mut delivered_ats) = (vec![], vec![]);
        for (a, next) in done {
            let (status, next_at, delivered) = finished(next, a.at_ms);
            ids.push(a.delivery_id.clone());
            attempts.push(i64::from(a.attempt));
            at.push(a.at_ms);
            took.push(a.duration_ms);
            codes.push(a.status_code.map(i64::from));
            errors.push(a.error.clone());
            statuses.push(status.to_string());
            next_ats.push(next_at);
            delivered_ats.push(delivered);
        }
        let mut tx = self.outbox_tx().await?;
        // One statement for the whole batch: the attempts and the rows'
        // new state.
        sqlx::query(
            "WITH done AS (
                 SELECT * FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::bigint[],
                                      $5::bigint[], $6::text[], $7::text[], $8::bigint[], $9::bigint[])
                     AS t(id, attempt, at_ms, duration_ms, code, error, status, next_at, delivered)
             ), recorded AS (
                 INSERT INTO delivery_attempts (delivery_id, attempt, at_ms, duration_ms, status_code, error)
                 SELECT id, attempt, at_ms, duration_ms, code, error FROM done
                 ON CONFLICT (delivery_id, attempt, at_ms) DO NOTHING
             )
             UPDATE deliveries d SET status = done.status,
                 next_attempt_at_ms = COALESCE(done.next_at, d.next_attempt_at_ms),
                 claimed_until_ms = 0, last_attempt_at_ms = done.at_ms,
                 last_status_code = done.code, last_error = done.error,
                 delivered_at_ms = done.delivered
             FROM done WHERE d.id = done.id",
        )
        .bind(ids)
        .bind(attempts)
        .bind(at)
        .bind(took)
        .bind(codes)
        .bind(errors)
        .bind(statuses)
        .bind(next_ats)
        .bind(delivered_ats)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        tx.commit().await.map_err(backend)
    }

    async fn retry_delivery(&self, id: &str, now_ms: i64) -> StoreResult<bool> {
        let n = sqlx::query(
            "UPDATE deliveries SET status = 'pending', attempts = 0,
                 next_attempt_at_ms = $2, age_from_ms = $2, claimed_until_ms = 0
             WHERE id = $1 AND status <> 'delivered'",
        )
        .bind(id)
        .bind(now_ms)
        .execute(&self.pool)
        .await
        .map_err(backend)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>> {
        let row = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        map_one(row, delivery_from)
    }

    async fn list_deliveries(&self, q: &DeliveryQuery) -> StoreResult<Vec<Delivery>> {
        let rows = sqlx::query(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries
             WHERE ($1::text IS NULL OR decision_id = $1) AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR id < $3)
             ORDER BY id DESC LIMIT $4"
        ))
        .bind(&q.decision_id)
        .bind(q.status.map(|s| s.as_str()))
        .bind(&q.before)
        .bind(i64::from(q.limit))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        map_all(&rows, delivery_from)
    }

    async fn delivery_attempts(&self, id: &str) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM delivery_attempts
             WHERE delivery_id = $1 ORDER BY at_ms, attempt"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        map_all(&rows, attempt_from)
    }

    async fn put_notification_ref(
        &self,
        decision_id: &str,
        key: &str,
        value: &str,
    ) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO notification_refs (decision_id, ref_key, ref_value) VALUES ($1, $2, $3)
             ON CONFLICT (decision_id, ref_key) DO UPDATE SET ref_value = EXCLUDED.ref_value",
        )
        .bind(decision_id)
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await
        .map_err(backend)?;
        Ok(())
    }

    async fn notification_ref(&self, decision_id: &str, key: &str) -> StoreResult<Option<String>> {
        let row = sqlx::query(
            "SELECT ref_value FROM notification_refs WHERE decision_id = $1 AND ref_key = $2",
        )
        .bind(decision_id)
        .bind(key)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| r.try_get(0).map_err(backend)).transpose()
    }

    async fn create_webhook(&self, w: &WebhookRecord) -> StoreResult<()> {
        let events =
            serde_json::to_string(&w.events).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(&format!(
            "INSERT INTO webhooks ({WEBHOOK_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
        ))
        .bind(&w.id)
        .bind(&w.url)
        .bind(&w.secret)
        .bind(events)
        .bind(&w.created_by)
        .bind(w.created_at_ms)
        .execute(&self.pool)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Duplicate
            } else {
                backend(e)
            }
        })?;
        Ok(())
    }

    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        let rows = sqlx::query(&format!(
            "SELECT {WEBHOOK_COLUMNS} FROM webhooks ORDER BY created_at_ms, id"
        ))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        map_all(&rows, webhook_from)
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM webhooks WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await
            .map_err(backend)?
            .rows_affected();
        Ok(n == 1)
    }
}
