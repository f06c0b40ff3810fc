//! Group commit for decisions on PostgreSQL.
//!
//! Storing decisions one by one would cap throughput at one transaction's
//! round trips per decision; instead a task per replica takes every
//! decision waiting to be stored, inserts them with one statement, signs
//! one checkpoint, commits once, and only then answers each caller. While
//! this replica is the log's only writer that statement is the whole
//! transaction; otherwise the batch is stored under the log lock (see
//! [`bulk`]). If any row is refused, the batch is stored again with each
//! decision in its own savepoint, so one failure cannot undo another.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_core::Decision;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::frontier::Frontier;
use gatehouse_store::{CreateOutcome, IssuedToken, NewDecision, StoreError, StoreResult};
use sqlx::{PgConnection, PgExecutor, PgPool, Row};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};

use crate::{backend, decision_from_row, json, log, DECISION_COLUMNS};

const MAX_BATCH: usize = 512;

struct Job {
    new: Arc<NewDecision>,
    body: String,
    reply: oneshot::Sender<StoreResult<CreateOutcome>>,
}

pub struct Batcher {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Batcher {
    pub fn start(pool: PgPool, signer: Arc<LogSigner>) -> Self {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, signer, rx));
        Batcher { jobs }
    }

    pub async fn create(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome> {
        let (reply, rx) = oneshot::channel();
        // Serialised here, on the caller's task, not the batcher's.
        let job = Job {
            body: json(&new.decision)?,
            new,
            reply,
        };
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("decision batcher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("decision batcher dropped a request".into()))?
    }
}

async fn run(pool: PgPool, signer: Arc<LogSigner>, mut rx: mpsc::UnboundedReceiver<Job>) {
    // The log's right edge after this replica's last commit; another
    // replica's appends change the stored size, which `log::frontier` checks.
    let mut cached: Option<Frontier> = None;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&pool, &signer, &batch, cached.take()).await {
            Ok((results, checkpoint, frontier)) => {
                cached = Some(frontier);
                for (job, result) in batch.into_iter().zip(results) {
                    let result = result.map(|outcome| match outcome {
                        CreateOutcome::Created { log_index, .. } => CreateOutcome::Created {
                            log_index,
                            checkpoint: checkpoint.clone(),
                        },
                        existing => existing,
                    });
                    let _ = job.reply.send(result);
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "decision batch failed");
                for job in batch {
                    let _ = job.reply.send(Err(StoreError::Backend(e.to_string())));
                }
            }
        }
    }
}

type BatchResult = (Vec<StoreResult<CreateOutcome>>, Option<String>, Frontier);

async fn commit_batch(
    pool: &PgPool,
    signer: &LogSigner,
    batch: &[Job],
    cached: Option<Frontier>,
) -> StoreResult<BatchResult> {
    match bulk(pool, signer, batch, cached).await {
        Err(StoreError::Duplicate) => {
            // Something in the batch was refused (a duplicate id, say), and
            // the bulk transaction rolled back. Store the jobs again, one by
            // one, each in its own savepoint, so one refusal cannot fail
            // the others.
            tracing::debug!("bulk insert refused; storing the batch one by one");
            one_by_one(pool, signer, batch).await
        }
        done => done,
    }
}
/// The rows of a batch's new decisions and tokens, column by column.
#[derive(Default)]
struct Rows {
    id: Vec<String>,
    created_by: Vec<String>,
    idempotency_key: Vec<Option<String>>,
    task_id: Vec<Option<String>>,
    status: Vec<&'static str>,
    deadline_ms: Vec<Option<i64>>,
    created_at_ms: Vec<i64>,
    body: Vec<String>,
    log_index: Vec<i64>,
    tokens: Vec<IssuedToken>,
}

impl Rows {
    /// Adds a job's decision (and token) and appends its entries to the
    /// log in memory; returns the decision's log index.
    fn stage(
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
            token: text(|t| &t.token),
            expires_at_ms: ms(|t| t.expires_at),
            created_at_ms: ms(|t| t.created_at),
        }
    }
}

/// How a batch's one statement ended.
enum Written {
    Stored,
    /// The log was not the size the rows were staged for: another writer
    /// appended first. Nothing was written.
    LogMoved,
}

/// A unique violation on a decision or token means the row exists
/// already: the caller's mistake, not the database's. On the log's tables it
/// means another writer took those indexes first.
fn refused(e: sqlx::Error) -> StoreResult<Written> {
    if !crate::is_unique_violation(&e) {
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

/// A transaction holding the log lock, and the log's right edge in it.
async fn locked(
    pool: &PgPool,
    cached: Option<Frontier>,
) -> StoreResult<(sqlx::Transaction<'static, sqlx::Postgres>, Frontier)> {
    let mut tx = pool.begin().await.map_err(backend)?;
    log::lock(&mut tx).await?;
    let log = log::frontier(&mut tx, cached).await?;
    Ok((tx, log))
}

/// A batch staged in memory against one size of the log.
struct Staged {
    rows: Rows,
    pending: log::Pending,
    results: Vec<StoreResult<CreateOutcome>>,
    before: Frontier,
    log: Frontier,
    checkpoint: Option<String>,
}

impl Staged {
    /// Gives each new decision (and token) its log entries after
    /// `before`, answers retries of idempotent requests with the decision
    /// stored first, and signs the checkpoint of the grown log.
    fn new(
        signer: &LogSigner,
        batch: &[Job],
        mut existing: HashMap<(String, String), Decision>,
        before: Frontier,
    ) -> StoreResult<Self> {
        let mut log = before.clone();
        let mut rows = Rows::default();
        let mut pending = log::Pending::default();
        let mut results = Vec::with_capacity(batch.len());
        for job in batch {
            let d = &job.new.decision;
            if let Some(key) = &d.idempotency_key {
                // An earlier decision with this key, stored before or
                // earlier in this batch, is the answer to a retry.
                if let Some(original) = existing.get(&(d.created_by.clone(), key.clone())) {
                    results.push(Ok(CreateOutcome::Existing(Box::new(original.clone()))));
                    continue;
                }
            }
            let log_index = rows.stage(job, &mut log, &mut pending)?;
            if let Some(key) = &d.idempotency_key {
                let stored = Decision {
                    log_index: Some(log_index),
                    ..d.clone()
                };
                existing.insert((d.created_by.clone(), key.clone()), stored);
            }
            results.push(Ok(CreateOutcome::Created {
                log_index,
                checkpoint: None,
            }));
        }
        let checkpoint = if log.size() > before.size() {
            Some(log::sign_checkpoint(signer, &log)?)
        } else {
            None
        };
        Ok(Staged {
            rows,
            pending,
            results,
            before,
            log,
            checkpoint,
        })
    }

    /// Writes the staged rows with `conn`; nothing to write is `Stored`.
    async fn write<'c>(&self, conn: impl PgExecutor<'c>) -> StoreResult<Written> {
        match &self.checkpoint {
            None => Ok(Written::Stored),
            Some(note) => {
                let checkpoint = Some((self.log.size(), note.as_str()));
                insert_all(
                    conn,
                    &self.rows,
                    &self.pending,
                    self.before.size(),
                    checkpoint,
                )
                .await
            }
        }
    }

    fn done(self) -> BatchResult {
        (self.results, self.checkpoint, self.log)
    }
}

/// Stores the whole batch, however many decisions it holds.
///
/// When this replica made the log's last append it knows the log's right
/// edge, and the batch is one autocommit statement: one round trip, plus
/// an idempotency lookup when a job carries a key. The statement takes the
/// log lock itself, but its snapshot may predate the lock, so it writes
/// nothing unless the log has the size the batch was staged for, and the
/// log's primary keys refuse an index another writer took after the
/// snapshot: the log stays gap-free and fork-free. If another writer (a
/// replica, or a review on this one) did append, the batch is staged again
/// in a transaction holding the lock, against the size read under it:
/// begin, lock, size, insert, commit.
async fn bulk(
    pool: &PgPool,
    signer: &LogSigner,
    batch: &[Job],
    cached: Option<Frontier>,
) -> StoreResult<BatchResult> {
    if let Some(before) = cached {
        let existing = existing_by_key(pool, batch).await?;
        let staged = Staged::new(signer, batch, existing, before)?;
        match staged.write(pool).await? {
            Written::Stored => return Ok(staged.done()),
            Written::LogMoved => {
                tracing::debug!("another writer appended; storing under the log lock")
            }
        }
    }
    let (mut tx, before) = locked(pool, None).await?;
    let existing = existing_by_key(&mut *tx, batch).await?;
    let staged = Staged::new(signer, batch, existing, before)?;
    if let Written::LogMoved = staged.write(&mut *tx).await? {
        return Err(moved_under_lock());
    }
    tx.commit().await.map_err(backend)?;
    Ok(staged.done())
}

/// Every append holds the log lock, so the log cannot grow under a holder
/// of the lock; if it did, something outside Gatehouse is writing to it.
fn moved_under_lock() -> StoreError {
    StoreError::Corrupt("the log grew while this replica held its lock".into())
}

/// Staged rows in one statement: the decisions, their tokens, the log
/// entries and stored hashes, and the signed checkpoint if there is one, as
/// data-modifying CTEs over `UNNEST`ed arrays (an empty array inserts
/// nothing). Every insert is guarded by the log's size: if it is not
/// `log_size`, the rows were staged for another log and nothing is written
/// ([`Written::LogMoved`]). A decision or token that exists already
/// refuses the whole statement ([`StoreError::Duplicate`]).
async fn insert_all<'c>(
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
         INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[])
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
}

/// Decisions already stored under the idempotency keys of this batch. A
/// decision another replica stores with one of these keys after the lookup
/// is caught by the unique index: the batch is refused and stored one by
/// one under the log lock, where the lookup is authoritative.
async fn existing_by_key<'c>(
    conn: impl PgExecutor<'c>,
    batch: &[Job],
) -> StoreResult<HashMap<(String, String), Decision>> {
    let (by, keys): (Vec<&str>, Vec<&str>) = batch
        .iter()
        .filter_map(|j| {
            let d = &j.new.decision;
            d.idempotency_key
                .as_deref()
                .map(|k| (d.created_by.as_str(), k))
        })
        .unzip();
    let mut found = HashMap::new();
    if keys.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "SELECT {DECISION_COLUMNS} FROM decisions
         WHERE (created_by, idempotency_key) IN (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]))"
    );
    let rows = sqlx::query(&sql)
        .bind(&by)
        .bind(&keys)
        .fetch_all(conn)
        .await
        .map_err(backend)?;
    for row in rows {
        let d = decision_from_row(&row)?;
        if let Some(key) = d.idempotency_key.clone() {
            found.insert((d.created_by.clone(), key), d);
        }
    }
    Ok(found)
}

/// The slow path: each job in its own savepoint, so a refused one is
/// rolled back (with its log entries) and the rest are stored.
async fn one_by_one(pool: &PgPool, signer: &LogSigner, batch: &[Job]) -> StoreResult<BatchResult> {
    let (mut tx, before) = locked(pool, None).await?;
    let mut log = before.clone();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        sqlx::query("SAVEPOINT job")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let kept = log.clone();
        let result = create_one(&mut tx, job, &mut log).await;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT job"
        } else {
            log = kept;
            "ROLLBACK TO SAVEPOINT job"
        };
        sqlx::query(end).execute(&mut *tx).await.map_err(backend)?;
        results.push(result);
    }
    let checkpoint = if log.size() > before.size() {
        Some(log::checkpoint_at(&mut tx, signer, &log).await?)
    } else {
        None
    };
    tx.commit().await.map_err(backend)?;
    Ok((results, checkpoint, log))
}

/// Stores one decision inside the batch's transaction.
async fn create_one(
    conn: &mut PgConnection,
    job: &Job,
    log: &mut Frontier,
) -> StoreResult<CreateOutcome> {
    // Earlier jobs of this batch are in the transaction already, so the
    // lookup sees them too.
    if let Some(original) = existing_by_key(&mut *conn, std::slice::from_ref(job))
        .await?
        .into_values()
        .next()
    {
        return Ok(CreateOutcome::Existing(Box::new(original)));
    }
    let mut pending = log::Pending::default();
    let mut rows = Rows::default();
    let log_size = log.size();
    let log_index = rows.stage(job, log, &mut pending)?;
    if let Written::LogMoved = insert_all(conn, &rows, &pending, log_size, None).await? {
        return Err(moved_under_lock());
    }
    Ok(CreateOutcome::Created {
        log_index,
        checkpoint: None,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use gatehouse_core::Verdict;
    use gatehouse_log::entry::Entry;
    use gatehouse_store::conformance::{
        assert_checkpoint_covers_every_leaf, sample_decision, test_signer,
    };
    use gatehouse_store::{CreateOutcome, Store};
    use time::OffsetDateTime;

    use sqlx::Row;

    use super::{bind_all, Rows, INSERT_ALL};
    use crate::testing::{fresh_schema, unique_schema_name};
    use crate::{log, PostgresStore};

    /// Reading the log's size must not scan the log: at ten thousand
    /// leaves a scan made every batch take milliseconds.
    #[tokio::test]
    async fn the_batch_statement_reads_the_log_size_from_the_index() {
        let options = fresh_schema(&unique_schema_name()).await;
        let store = PostgresStore::connect_with(options, test_signer())
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

    async fn create(store: &PostgresStore) -> u64 {
        let d = sample_decision(Verdict::Allow, "k1", None, "t-race");
        match store.create_decision(&d, None).await.unwrap() {
            CreateOutcome::Created { log_index, .. } => log_index,
            other => panic!("unexpected {other:?}"),
        }
    }

    /// The replica's batch is staged for the size it last wrote, while
    /// another writer has appended at that size and not yet committed. The
    /// batch's statement must wait for it, be refused by the log's primary
    /// key rather than fork the log, and land after the other append.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_batch_racing_another_writer_lands_after_it() {
        let options = fresh_schema(&unique_schema_name()).await;
        let store = Arc::new(
            PostgresStore::connect_with(options, test_signer())
                .await
                .unwrap(),
        );
        assert_eq!(create(&store).await, 0);

        let mut other = store.pool.begin().await.unwrap();
        log::lock(&mut other).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let entry = Entry::key_event("k-other", "created", "agent", now);
        assert_eq!(log::append(&mut other, &entry).await.unwrap(), 1);

        let racing = tokio::spawn({
            let store = store.clone();
            async move { create(&store).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !racing.is_finished(),
            "the batch must wait for the other writer's uncommitted index"
        );
        other.commit().await.unwrap();
        assert_eq!(racing.await.unwrap(), 2);
        assert_eq!(assert_checkpoint_covers_every_leaf(store.as_ref()).await, 3);
    }
}
