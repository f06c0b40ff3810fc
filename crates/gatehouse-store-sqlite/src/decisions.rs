//! Storing and reading decisions.

use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::decision::to_unix_millis;
use gatehouse_core::{Decision, Status};
use gatehouse_store::sql::{
    count_decisions_sql, decision_from_row, list_decisions_sql, Dialect, DECISION_COLUMNS,
};
use gatehouse_store::{
    Arg, CreateOutcome, DecisionQuery, DecisionStore, NewDecision, StoreError, StoreResult,
};
use rusqlite::{params, Connection};

use crate::rows::{backend, json, query_all, query_one};
use crate::tokens::insert_token;
use crate::{log, SqliteStore};

pub(crate) fn find_decision(conn: &Connection, id: &str) -> StoreResult<Option<Decision>> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1");
    query_one(conn, &sql, [id], decision_from_row)
}

#[async_trait]
impl DecisionStore for SqliteStore {
    async fn insert_decision(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome> {
        // Serialised here, off the single writer thread.
        let body = json(&new.decision)?;
        let (outcome, checkpoint) = self
            .writer
            .run_logged_unguarded(move |conn| {
                let NewDecision {
                    decision: d,
                    leaf,
                    token,
                } = &*new;
                if let Some(key) = &d.idempotency_key {
                    let sql = format!(
                        "SELECT {DECISION_COLUMNS} FROM decisions WHERE created_by = ?1 AND idempotency_key = ?2"
                    );
                    if let Some(existing) =
                        query_one(conn, &sql, params![d.created_by, key], decision_from_row)?
                    {
                        return Ok(CreateOutcome::Existing(Box::new(existing)));
                    }
                }
                // The decision goes first, at the index its entry will take:
                // if it is refused, nothing has been written (this job has no
                // savepoint), and if anything after it fails, the writer rolls
                // back the whole batch.
                let log_index = conn.log.borrow().size();
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index, escalate_at_ms)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    )
                    .map_err(backend)?
                    .execute(params![
                        d.id,
                        d.created_by,
                        d.idempotency_key,
                        d.request.task_id,
                        d.status.as_str(),
                        d.deadline.map(to_unix_millis),
                        to_unix_millis(d.created_at),
                        body,
                        log_index as i64,
                        d.next_escalation_ms(i64::MIN)
                    ]);
                match inserted {
                    Ok(_) => {
                        if log::append_leaf(conn, leaf)? != log_index {
                            return Err(StoreError::Corrupt("log index moved mid-job".into()));
                        }
                        if let Some((t, leaf)) = token {
                            insert_token(conn, t)?;
                            log::append_leaf(conn, leaf)?;
                        }
                        Ok(CreateOutcome::Created {
                            log_index,
                            checkpoint: None,
                        })
                    }
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        Err(StoreError::Duplicate)
                    }
                    Err(e) => Err(backend(e)),
                }
            })
            .await?;
        Ok(match outcome {
            CreateOutcome::Created { log_index, .. } => CreateOutcome::Created {
                log_index,
                checkpoint: checkpoint.map(|c| c.to_string()),
            },
            existing => existing,
        })
    }

    async fn get_decision(&self, id: &str) -> StoreResult<Option<Decision>> {
        let id = id.to_string();
        self.read(move |c| find_decision(c, &id)).await
    }

    async fn get_decisions(&self, ids: &[String]) -> StoreResult<Vec<Decision>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        // One parameter however many ids: a JSON array read by json_each.
        let ids = serde_json::to_string(ids).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.read(move |c| {
            let sql = format!(
                "SELECT {DECISION_COLUMNS} FROM decisions WHERE id IN (SELECT value FROM json_each(?1))"
            );
            query_all(c, &sql, [ids], decision_from_row)
        })
        .await
    }

    async fn list_decisions(&self, query: &DecisionQuery) -> StoreResult<Vec<Decision>> {
        let q = query.clone();
        self.read(move |c| {
            let (sql, args) = list_decisions_sql(&q, Dialect::Sqlite);
            let values: Vec<rusqlite::types::Value> = args
                .into_iter()
                .map(|a| match a {
                    Arg::Text(t) => rusqlite::types::Value::Text(t),
                    Arg::Int(i) => rusqlite::types::Value::Integer(i),
                })
                .collect();
            query_all(
                c,
                &sql,
                rusqlite::params_from_iter(values),
                decision_from_row,
            )
        })
        .await
    }

    async fn count_decisions(&self, status: Status) -> StoreResult<u64> {
        self.read(move |c| {
            let n = query_one(
                c,
                &count_decisions_sql(Dialect::Sqlite),
                [status.as_str()],
                |r| r.int(0),
            )?;
            Ok(n.unwrap_or(0) as u64)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use gatehouse_core::Status;
    use gatehouse_store::sql::{list_decisions_sql, Dialect};
    use gatehouse_store::DecisionQuery;
    use rusqlite::Connection;

    use crate::tests::fresh_database;

    #[test]
    fn decision_lists_use_the_status_and_task_indexes() {
        let (_dir, path) = fresh_database();
        let conn = Connection::open(path).unwrap();
        let plan = |q: DecisionQuery| -> String {
            let (sql, args) = list_decisions_sql(&q, Dialect::Sqlite);
            let values: Vec<rusqlite::types::Value> = args
                .into_iter()
                .map(|a| match a {
                    gatehouse_store::Arg::Text(t) => rusqlite::types::Value::Text(t),
                    gatehouse_store::Arg::Int(i) => rusqlite::types::Value::Integer(i),
                })
                .collect();
            conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(rusqlite::params_from_iter(values), |r| {
                    r.get::<_, String>(3)
                })
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("; ")
        };
        let query = |status: Option<Status>, task: Option<&str>| DecisionQuery {
            status,
            task_id: task.map(str::to_string),
            before: Some("dec_zzz".into()),
            limit: 50,
            ..Default::default()
        };
        let by_status = plan(query(Some(Status::PendingReview), None));
        assert!(by_status.contains("decisions_status"), "{by_status}");
        let queue = plan(DecisionQuery {
            status: Some(Status::PendingReview),
            order: gatehouse_store::ListOrder::Deadline,
            after: Some("1:dec_1".into()),
            limit: 50,
            ..Default::default()
        });
        assert!(queue.contains("decisions_pending_queue"), "{queue}");
        assert!(!queue.contains("TEMP B-TREE"), "sorts in memory: {queue}");
        let by_task = plan(query(None, Some("task_1")));
        assert!(by_task.contains("decisions_task"), "{by_task}");
        assert!(
            !by_task.contains("TEMP B-TREE"),
            "sorts in memory: {by_task}"
        );
    }
}
