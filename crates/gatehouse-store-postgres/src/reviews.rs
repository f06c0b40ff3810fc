//! Resolving pending decisions: reviews and the expiry sweep, each a
//! conditional update under the log lock, so replicas cannot both win.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::{Decision, Review};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{decision_from_row, review_sql, why_not_reviewable, Dialect};
use gatehouse_store::{ReviewStore, StoreError, StoreResult};
use sqlx::Row;
use time::OffsetDateTime;

use crate::rows::{backend, json, map_one};
use crate::{log, PostgresStore};

#[async_trait]
impl ReviewStore for PostgresStore {
    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision> {
        let status = review.resulting_status();
        let mut tx = self.logged_tx().await?;
        let updated = sqlx::query(&review_sql(Dialect::Postgres))
            .bind(id)
            .bind(status.as_str())
            .bind(json(review)?)
            .bind(to_unix_millis(review.reviewed_at))
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(decision) = map_one(updated, decision_from_row)? {
            log::append(&mut tx, &LogEntry::review(id, review)).await?;
            self.commit_logged(tx).await?;
            return Ok(decision);
        }
        drop(tx);
        let current = self.find(id).await?.ok_or(StoreError::NotFound)?;
        Err(why_not_reviewable(&current))
    }

    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        // Cheap check first, so an idle sweep never takes the log lock.
        let due: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM decisions WHERE status = 'pending_review' AND deadline_ms <= $1 LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.logged_tx().await?;
        let rows = sqlx::query(
            "UPDATE decisions SET status = 'expired', resolved_at_ms = $1
             WHERE status = 'pending_review' AND deadline_ms <= $1 RETURNING id",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0).map_err(backend))
            .collect::<StoreResult<_>>()?;
        for id in &ids {
            log::append(&mut tx, &LogEntry::expiry(id, now)).await?;
        }
        self.commit_logged(tx).await?;
        Ok(ids)
    }
}
