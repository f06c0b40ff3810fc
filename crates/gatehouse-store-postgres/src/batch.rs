//! Group commit for decisions on PostgreSQL.
//!
//! Appends are serialised by one advisory lock (see `log`). Taking it once
//! per decision would cap throughput at one transaction's round trips per
//! decision; instead a task per replica takes every decision waiting to be
//! stored, runs them in one transaction under one lock (each in a savepoint,
//! so one failure cannot undo another), signs one checkpoint, commits once,
//! and only then answers each caller.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_core::Decision;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::frontier::Frontier;
use gatehouse_store::{CreateOutcome, IssuedToken, NewDecision, StoreError, StoreResult};
use sqlx::{PgConnection, PgPool};
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
    let mut tx = pool.begin().await.map_err(backend)?;
    log::lock(&mut tx).await?;
    let before = log::frontier(&mut tx, cached).await?;
    sqlx::query("SAVEPOINT bulk")
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
    let (results, log) = match bulk(&mut tx, batch, before.clone()).await {
        Ok(done) => done,
        Err(e) => {
            // Something in the batch was refused (a duplicate id, say). Undo
            // the bulk writes and store the jobs one by one, each in its
            // own savepoint, so one refusal cannot fail the others.
            tracing::debug!(error = %e, "bulk insert refused; storing the batch one by one");
            sqlx::query("ROLLBACK TO SAVEPOINT bulk")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            one_by_one(&mut tx, batch, before.clone()).await?
        }
    };
    let checkpoint = if log.size() > before.size() {
        Some(log::checkpoint_at(&mut tx, signer, &log).await?)
    } else {
        None
    };
    tx.commit().await.map_err(backend)?;
    Ok((results, checkpoint, log))
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

/// A unique violation means the row exists already: the caller's mistake,
/// not the database's.
fn refused(e: sqlx::Error) -> StoreError {
    if crate::is_unique_violation(&e) {
        StoreError::Duplicate
    } else {
        backend(e)
    }
}

/// Stores the whole batch with a fixed number of statements: one
/// idempotency lookup, then the decisions, their tokens, the leaves and the
/// stored hashes, each as one multi-row insert. The log's new hashes are
/// computed in memory from its right edge, so nothing is read per decision.
async fn bulk(
    conn: &mut PgConnection,
    batch: &[Job],
    mut log: Frontier,
) -> StoreResult<(Vec<StoreResult<CreateOutcome>>, Frontier)> {
    let mut existing = existing_by_key(conn, batch).await?;
    let mut rows = Rows::default();
    let mut pending = log::Pending::default();
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        let d = &job.new.decision;
        if let Some(key) = &d.idempotency_key {
            // An earlier decision with this key, stored before or earlier in
            // this batch, is the answer to a retry.
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
    insert_rows(conn, &rows).await?;
    pending.write(conn).await?;
    Ok((results, log))
}

/// Decisions already stored under the idempotency keys of this batch.
/// Holding the log lock makes this authoritative across replicas: every
/// decision insert happens under it.
async fn existing_by_key(
    conn: &mut PgConnection,
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
        .fetch_all(&mut *conn)
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

async fn insert_rows(conn: &mut PgConnection, rows: &Rows) -> StoreResult<()> {
    if rows.id.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[])",
    )
    .bind(&rows.id)
    .bind(&rows.created_by)
    .bind(&rows.idempotency_key)
    .bind(&rows.task_id)
    .bind(&rows.status)
    .bind(&rows.deadline_ms)
    .bind(&rows.created_at_ms)
    .bind(&rows.body)
    .bind(&rows.log_index)
    .execute(&mut *conn)
    .await
    .map_err(refused)?;
    if rows.tokens.is_empty() {
        return Ok(());
    }
    let t = &rows.tokens;
    let col = |f: fn(&IssuedToken) -> String| t.iter().map(f).collect::<Vec<_>>();
    let ms = |f: fn(&IssuedToken) -> OffsetDateTime| {
        t.iter().map(|x| to_unix_millis(f(x))).collect::<Vec<_>>()
    };
    sqlx::query(
        "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
         SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[])",
    )
    .bind(col(|x| x.decision_id.clone()))
    .bind(col(|x| x.jti.clone()))
    .bind(col(|x| x.kid.clone()))
    .bind(col(|x| x.token.clone()))
    .bind(ms(|x| x.expires_at))
    .bind(ms(|x| x.created_at))
    .execute(conn)
    .await
    .map_err(refused)?;
    Ok(())
}

/// The slow path: each job in its own savepoint, so a refused one is
/// rolled back (with its log entries) and the rest are stored.
async fn one_by_one(
    conn: &mut PgConnection,
    batch: &[Job],
    mut log: Frontier,
) -> StoreResult<(Vec<StoreResult<CreateOutcome>>, Frontier)> {
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        sqlx::query("SAVEPOINT job")
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        let before = log.clone();
        let result = create_one(conn, job, &mut log).await;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT job"
        } else {
            log = before;
            "ROLLBACK TO SAVEPOINT job"
        };
        sqlx::query(end)
            .execute(&mut *conn)
            .await
            .map_err(backend)?;
        results.push(result);
    }
    Ok((results, log))
}

/// Stores one decision inside the batch's transaction.
async fn create_one(
    conn: &mut PgConnection,
    job: &Job,
    log: &mut Frontier,
) -> StoreResult<CreateOutcome> {
    // Earlier jobs of this batch are in the transaction already, so the
    // lookup sees them too.
    if let Some(original) = existing_by_key(conn, std::slice::from_ref(job))
        .await?
        .into_values()
        .next()
    {
        return Ok(CreateOutcome::Existing(Box::new(original)));
    }
    let mut pending = log::Pending::default();
    let mut rows = Rows::default();
    let log_index = rows.stage(job, log, &mut pending)?;
    insert_rows(conn, &rows).await?;
    pending.write(conn).await?;
    Ok(CreateOutcome::Created {
        log_index,
        checkpoint: None,
    })
}
