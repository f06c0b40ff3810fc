//! The one statement that stores a batch: its rows as column arrays, the
//! statement, and what its refusals mean.

use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::frontier::Frontier;
use gatehouse_store::{IssuedToken, StoreError, StoreResult};
use sqlx::{PgExecutor, Row};
use time::OffsetDateTime;

use super::Job;
use crate::log;
use crate::rows::backend;

/// The rows of a batch's new decisions and tokens, column by column.
#[derive(Default)]
pub(super) struct Rows {
    id: Vec<String>,
    created_by: Vec<String>,
    idempotency_key: Vec<Option<String>>,
    task_id: Vec<Option<String>>,
    status: Vec<&'static str>,
    deadline_ms: Vec<Option<i64>>,
    created_at_ms: Vec<i64>,
    body: Vec<String>,
    log_index: Vec<i64>,
    escalate_at_ms: Vec<Option<i64>>,
    tokens: Vec<IssuedToken>,
}

impl Rows {
    /// Adds a job's decision (and token) and appends its entries to the
    /// log in memory; returns the decision's log index.
    pub(super) fn stage(
        &mut self,
        job: &Job,
        log: &mut Frontier,
        pending: &mut log::Pending,
    ) -> StoreResult<u64> {
        let d = &job.new.decision;
        let log_index = pending.append(log, &job.new.leaf)?;
        self.id.push(d.id.clone());
        self.created_by.push(d.created_by.clone());
        self.idempotency_key.push(d.idempotency_key.clone());
        self.task_id.push(d.request.task_id.clone());
        self.status.push(d.status.as_str());
        self.deadline_ms.push(d.deadline.map(to_unix_millis));
        self.created_at_ms.push(to_unix_millis(d.created_at));
        self.body.push(job.body.clone());
        self.log_index.push(log_index as i64);
        self.escalate_at_ms.push(d.next_escalation_ms(i64::MIN));
        if let Some((t, leaf)) = &job.new.token {
            self.tokens.push(t.clone());
            pending.append(log, leaf)?;
        }
        Ok(log_index)
    }
}

/// Approval tokens as the column arrays an `UNNEST` insert binds.
struct TokenColumns {
    decision_id: Vec<String>,
    jti: Vec<String>,
    kid: Vec<String>,
    token: Vec<String>,
    expires_at_ms: Vec<i64>,
    created_at_ms: Vec<i64>,
}

impl TokenColumns {
    fn of(tokens: &[IssuedToken]) -> Self {
        let text = |f: fn(&IssuedToken) -> &String| tokens.iter().map(|t| f(t).clone()).collect();
        let ms = |f: fn(&IssuedToken) -> OffsetDateTime| {
            tokens.iter().map(|t| to_unix_millis(f(t))).collect()
        };
        TokenColumns {
            decision_id: text(|t| &t.decision_id),
            jti: text(|t| &t.jti),
            kid: text(|t| &t.kid),
            token: text(|t| &t.unsigned),
            expires_at_ms: ms(|t| t.expires_at),
            created_at_ms: ms(|t| t.created_at),
        }
    }
}

/// How a batch's one statement ended.
pub(super) enum Written {
    Stored,
    /// The log was not the size the rows were staged for: another writer
    /// appended first. Nothing was written.
    LogMoved,
}

/// A unique violation on a decision or token means the row exists
/// already: the caller's mistake, not the database's. On the log's tables it
/// means another writer took those indexes first.
fn refused(e: sqlx::Error) -> StoreResult<Written> {
    if !crate::rows::is_unique_violation(&e) {
        return Err(backend(e));
    }
    let table = match &e {
        sqlx::Error::Database(db) => db.table().map(str::to_owned),
        _ => None,
    };
    match table.as_deref() {
        Some("decisions" | "approval_tokens") => Err(StoreError::Duplicate),
        Some("log_entries" | "log_hashes" | "checkpoints") => Ok(Written::LogMoved),
        _ => Err(backend(e)),
    }
}

/// Staged rows in one statement: the decisions, their tokens, the log
/// entries and stored hashes, and the signed checkpoint if there is one, as
/// data-modifying CTEs over `UNNEST`ed arrays (an empty array inserts
/// nothing). Every insert is guarded by the log's size: if it is not
/// `log_size`, the rows were staged for another log and nothing is written
/// ([`Written::LogMoved`]). A decision or token that exists already
/// refuses the whole statement ([`StoreError::Duplicate`]).
pub(super) async fn insert_all<'c>(
    conn: impl PgExecutor<'c>,
    rows: &Rows,
    pending: &log::Pending,
    log_size: u64,
    checkpoint: Option<(u64, &str)>,
) -> StoreResult<Written> {
    let inserted = bind_all(INSERT_ALL, rows, pending, log_size, checkpoint)
        .fetch_one(conn)
        .await
        .and_then(|row| row.try_get::<bool, _>(0));
    match inserted {
        Ok(true) => Ok(Written::Stored),
        Ok(false) => Ok(Written::LogMoved),
        Err(e) => refused(e),
    }
}

/// The statement of [`insert_all`]. Its first CTE takes the log lock and
/// compares the log's size; the size is a scalar subquery of its own so
/// that PostgreSQL reads it from the end of the primary key's index rather
/// than scanning the log (a test checks the plan).
const INSERT_ALL: &str =
    "WITH g AS (
         SELECT (SELECT COALESCE(MAX(idx) + 1, 0) FROM log_entries) = $25 AS ok
         FROM pg_advisory_xact_lock($26)
     ), d AS (
         INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index, escalate_at_ms)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[], $27::BIGINT[])
         WHERE (SELECT ok FROM g)
     ), t AS (
         INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
         SELECT * FROM UNNEST($10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[], $15::BIGINT[])
         WHERE (SELECT ok FROM g)
     ), e AS (
         INSERT INTO log_entries (idx, kind, ref_id, leaf)
         SELECT * FROM UNNEST($16::BIGINT[], $17::TEXT[], $18::TEXT[], $19::BYTEA[])
         WHERE (SELECT ok FROM g)
     ), h AS (
         INSERT INTO log_hashes (idx, hash) SELECT * FROM UNNEST($20::BIGINT[], $21::BYTEA[])
         WHERE (SELECT ok FROM g)
     ), c AS (
         INSERT INTO checkpoints (size, note, created_at_ms)
         SELECT $22, $23, $24 WHERE $23::TEXT IS NOT NULL AND (SELECT ok FROM g)
         ON CONFLICT (size) DO NOTHING
     )
     SELECT ok FROM g";

fn bind_all<'q>(
    sql: &'q str,
    rows: &'q Rows,
    pending: &'q log::Pending,
    log_size: u64,
    checkpoint: Option<(u64, &'q str)>,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    let t = TokenColumns::of(&rows.tokens);
    sqlx::query(sql)
        .bind(&rows.id)
        .bind(&rows.created_by)
        .bind(&rows.idempotency_key)
        .bind(&rows.task_id)
        .bind(&rows.status)
        .bind(&rows.deadline_ms)
        .bind(&rows.created_at_ms)
        .bind(&rows.body)
        .bind(&rows.log_index)
        .bind(t.decision_id)
        .bind(t.jti)
        .bind(t.kid)
        .bind(t.token)
        .bind(t.expires_at_ms)
        .bind(t.created_at_ms)
        .bind(&pending.idx)
        .bind(&pending.kind)
        .bind(&pending.ref_id)
        .bind(&pending.leaf)
        .bind(&pending.hash_idx)
        .bind(&pending.hash)
        .bind(checkpoint.map(|(size, _)| size as i64))
        .bind(checkpoint.map(|(_, note)| note))
        .bind(to_unix_millis(OffsetDateTime::now_utc()))
        .bind(log_size as i64)
        .bind(log::LOG_LOCK)
        .bind(&rows.escalate_at_ms)
}

#[cfg(test)]
mod tests {
    use gatehouse_store::conformance::test_signer;
    use sqlx::Row;

    use super::{bind_all, Rows, INSERT_ALL};
    use crate::testing::TestSchema;
    use crate::{log, PostgresStore};

    /// Reading the log's size must not scan the log: at ten thousand
    /// leaves a scan made every batch take milliseconds.
    #[tokio::test]
    async fn the_batch_statement_reads_the_log_size_from_the_index() {
        let schema = TestSchema::create().await;
        let store = PostgresStore::connect_with(schema.options(), test_signer())
            .await
            .unwrap();
        sqlx::query(
            "INSERT INTO log_entries (idx, kind, ref_id, leaf)
             SELECT i, 'test', 'r', '\\x00' FROM generate_series(0, 9999) i",
        )
        .execute(&store.pool)
        .await
        .unwrap();
        sqlx::query("ANALYZE log_entries")
            .execute(&store.pool)
            .await
            .unwrap();
        let (rows, pending) = (Rows::default(), log::Pending::default());
        let explain = format!("EXPLAIN {INSERT_ALL}");
        let plan: Vec<String> = bind_all(&explain, &rows, &pending, 10_000, None)
            .fetch_all(&store.pool)
            .await
            .unwrap()
            .iter()
            .map(|row| row.get(0))
            .collect();
        let plan = plan.join("\n");
        assert!(
            plan.contains("Index Only Scan Backward using log_entries_pkey"),
            "{plan}"
        );
        assert!(!plan.contains("Seq Scan on log_entries"), "{plan}");
    }
}
