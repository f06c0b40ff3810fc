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

use gatehouse_core::Decision;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::frontier::Frontier;
use gatehouse_store::{CreateOutcome, NewDecision, StoreError, StoreResult};
use sqlx::{PgConnection, PgExecutor, PgPool};
use tokio::sync::{mpsc, oneshot};

use gatehouse_store::sql::{decision_from_row, DECISION_COLUMNS};

use crate::log;
use crate::rows::{backend, json, Cols};

mod insert;

use insert::{insert_all, Rows, Written};

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
        let started = std::time::Instant::now();
        match commit_batch(&pool, &signer, &batch, cached.take()).await {
            Ok((results, checkpoint, frontier)) => {
                gatehouse_store::record_batch("postgres", batch.len(), started.elapsed());
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
                    let _ = job.reply.send(Err(e.clone()));
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
        let d = decision_from_row(&Cols(&row))?;
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
    use gatehouse_log::entry::{KeyChange, LogEntry};
    use gatehouse_store::conformance::{
        assert_checkpoint_covers_every_leaf, sample_decision, test_signer,
    };
    use gatehouse_store::prelude::*;
    use gatehouse_store::CreateOutcome;
    use time::OffsetDateTime;

    use crate::testing::TestSchema;
    use crate::{log, PostgresStore};

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
        let schema = TestSchema::create().await;
        let store = Arc::new(
            PostgresStore::connect_with(schema.options(), test_signer())
                .await
                .unwrap(),
        );
        assert_eq!(create(&store).await, 0);

        let mut other = store.pool.begin().await.unwrap();
        log::lock(&mut other).await.unwrap();
        let now = OffsetDateTime::now_utc();
        let entry = LogEntry::api_key(
            "k-other",
            KeyChange::Created,
            gatehouse_core::Role::Agent,
            now,
        );
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
