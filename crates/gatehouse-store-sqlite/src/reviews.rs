//! Resolving pending decisions: reviews and the expiry sweep.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::{Decision, Review};
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{
    decision_from_row, escalations_due, judge_review, review_sql, why_not_reviewable, Dialect,
    DECISION_COLUMNS,
};
use gatehouse_store::{ReviewStore, StoreError, StoreResult};
use rusqlite::params;
use time::OffsetDateTime;

use crate::decisions::find_decision;
use crate::rows::{backend, query_all, query_one};
use crate::{log, SqliteStore};

/// Without statistics SQLite prefers the status index here, which reads
/// every pending row on every sweep (a full-table-sized stall on the single
/// writer once many decisions are pending); the partial deadline index reads
/// only the due ones.
pub(crate) const EXPIRE_DUE_SQL: &str = "UPDATE decisions INDEXED BY decisions_pending_deadline
     SET status = 'expired', resolved_at_ms = ?1
     WHERE status = 'pending_review' AND deadline_ms <= ?1 RETURNING id";

#[async_trait]
impl ReviewStore for SqliteStore {
    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision> {
        let id = id.to_string();
        let review = review.clone();
        self.writer
            .run(move |conn| {
                // On the single writer, the read and the update below cannot
                // interleave with another review.
                let current = find_decision(conn, &id)?.ok_or(StoreError::NotFound)?;
                let judged = judge_review(&current, &review)?;
                let updated = query_one(
                    conn,
                    &review_sql(Dialect::Sqlite),
                    params![
                        id,
                        judged.status.as_str(),
                        judged.review,
                        judged.reviews,
                        judged.resolved_at_ms,
                        judged.escalate_at_ms
                    ],
                    decision_from_row,
                )?
                .ok_or_else(|| why_not_reviewable(&current))?;
                log::append(
                    conn,
                    &LogEntry::review(&id, &review, judged.status.is_final()),
                )?;
                Ok(updated)
            })
            .await
    }

    async fn escalate_due(&self, now: OffsetDateTime) -> StoreResult<Vec<(String, String)>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        self.writer
            .run(move |conn| {
                let due = query_all(
                    conn,
                    &format!("SELECT {DECISION_COLUMNS} FROM decisions INDEXED BY decisions_pending_escalation
                     WHERE status = 'pending_review' AND escalate_at_ms <= ?1"),
                    params![now_ms],
                    decision_from_row,
                )?;
                let mut escalated = Vec::new();
                for d in due {
                    let last = conn
                        .query_row(
                            "SELECT escalate_at_ms FROM decisions WHERE id = ?1",
                            [&d.id],
                            |r| r.get::<_, Option<i64>>(0),
                        )
                        .map_err(backend)?
                        .unwrap_or(now_ms);
                    for group in escalations_due(&d, last, now_ms) {
                        log::append(conn, &LogEntry::escalation(&d.id, &group, now))?;
                        escalated.push((d.id.clone(), group));
                    }
                    conn.execute(
                        "UPDATE decisions SET escalate_at_ms = ?2 WHERE id = ?1",
                        params![d.id, d.next_escalation_ms(now_ms)],
                    )
                    .map_err(backend)?;
                }
                Ok(escalated)
            })
            .await
    }

    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        self.writer
            .run(move |conn| {
                let ids = conn
                    .prepare_cached(EXPIRE_DUE_SQL)
                    .map_err(backend)?
                    .query_map(params![now_ms], |r| r.get::<_, String>(0))
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                for id in &ids {
                    log::append(conn, &LogEntry::expiry(id, now))?;
                }
                Ok(ids)
            })
            .await
    }
}

#[cfg(test)]
mod tests {
    use rusqlite::{params, Connection};

    use super::EXPIRE_DUE_SQL;
    use crate::tests::fresh_database;

    #[test]
    fn expiry_sweep_reads_only_the_partial_deadline_index() {
        let (_dir, path) = fresh_database();
        let conn = Connection::open(path).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EXPIRE_DUE_SQL}"))
            .unwrap()
            .query_map(params![0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert!(plan[0].contains("decisions_pending_deadline"), "{plan:?}");
    }
}
