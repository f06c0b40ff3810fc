//! Resolving pending decisions: reviews and the expiry sweep, each a
//! conditional update under the log lock, so replicas cannot both win.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::{Decision, Review};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{
    decision_from_row, escalations_due, judge_review, review_sql, why_not_reviewable, Dialect,
    DECISION_COLUMNS,
};
use gatehouse_store::{ReviewStore, StoreError, StoreResult};
use sqlx::Row;
use time::OffsetDateTime;

use crate::rows::{backend, map_one, Cols};
use crate::{log, PostgresStore};

impl PostgresStore {
    /// Whether a pending decision's `column` (a deadline or an escalation
    /// time) is due at `now_ms`: read without the log lock, so an idle
    /// sweep never takes it.
    async fn any_pending_due(&self, column: &'static str, now_ms: i64) -> StoreResult<bool> {
        let sql = format!(
            "SELECT 1 FROM decisions WHERE status = 'pending_review' AND {column} <= $1 LIMIT 1"
        );
        let due: Option<i32> = sqlx::query_scalar(&sql)
            .bind(now_ms)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        Ok(due.is_some())
    }
}

#[async_trait]
impl ReviewStore for PostgresStore {
    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision> {
        // Under the log lock, which every review, expiry and decision batch
        // takes: the read and the update cannot interleave with another.
        let mut tx = self.logged_tx().await?;
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1");
        let row = sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let current = map_one(row, decision_from_row)?.ok_or(StoreError::NotFound)?;
        let judged = judge_review(&current, review)?;
        let resolves = judged.status.is_final();
        let updated = sqlx::query(&review_sql(Dialect::Postgres))
            .bind(id)
            .bind(judged.status.as_str())
            .bind(judged.review)
            .bind(judged.reviews)
            .bind(judged.resolved_at_ms)
            .bind(judged.escalate_at_ms)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        let updated =
            map_one(updated, decision_from_row)?.ok_or_else(|| why_not_reviewable(&current))?;
        log::append(&mut tx, &LogEntry::review(id, review, resolves)).await?;
        self.commit_logged(tx).await?;
        Ok(updated)
    }

    async fn escalate_due(&self, now: OffsetDateTime) -> StoreResult<Vec<(String, String)>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        if !self.any_pending_due("escalate_at_ms", now_ms).await? {
            return Ok(Vec::new());
        }
        let mut tx = self.logged_tx().await?;
        let sql = format!(
            "SELECT {DECISION_COLUMNS}, escalate_at_ms FROM decisions
             WHERE status = 'pending_review' AND escalate_at_ms <= $1"
        );
        let rows = sqlx::query(&sql)
            .bind(now_ms)
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
        let mut escalated = Vec::new();
        for row in &rows {
            let d = decision_from_row(&Cols(row))?;
            let since: i64 = row.try_get("escalate_at_ms").map_err(backend)?;
            for group in escalations_due(&d, since, now_ms) {
                log::append(&mut tx, &LogEntry::escalation(&d.id, &group, now)).await?;
                escalated.push((d.id.clone(), group));
            }
            sqlx::query("UPDATE decisions SET escalate_at_ms = $2 WHERE id = $1")
                .bind(&d.id)
                .bind(d.next_escalation_ms(now_ms))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        self.commit_logged(tx).await?;
        Ok(escalated)
    }

    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        if !self.any_pending_due("deadline_ms", now_ms).await? {
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
