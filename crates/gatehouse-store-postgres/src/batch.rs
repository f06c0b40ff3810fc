//! Group commit for decisions on PostgreSQL.
//!
//! Appends are serialised by one advisory lock (see `log`). Taking it once
//! per decision would cap throughput at one transaction's round trips per
//! decision; instead a task per replica takes every decision waiting to be
//! stored, inserts them in one transaction under one lock with one
//! statement, signs one checkpoint, commits once, and only then answers
//! each caller. If any row is refused, the batch is stored again with each
//! decision in its own savepoint, so one failure cannot undo another.

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

/// A unique violation on a decision or token means the row exists
/// already: the caller's mistake, not the database's. On the log's tables it
/// would mean a forked log, which is the database's.
fn refused(e: sqlx::Error) -> StoreError {
    let exists = crate::is_unique_violation(&e)
        && matches!(&e, sqlx::Error::Database(db)
            if matches!(db.table(), Some("decisions" | "approval_tokens")));
    if exists {
        StoreError::Duplicate
    } else {
        backend(e)
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

/// Stores the whole batch in one transaction of five round trips, however
/// many decisions it holds: begin, the log lock, the log size, one
/// statement that inserts every row (see [`insert_all`]), commit. An
/// idempotency lookup for the whole batch is added when a job carries a
/// key. The log's new hashes and the checkpoint are computed in memory from
/// its right edge, so nothing is read per decision.
async fn bulk(
    pool: &PgPool,
    signer: &LogSigner,
    batch: &[Job],
    cached: Option<Frontier>,
) -> StoreResult<BatchResult> {
    let (mut tx, before) = locked(pool, cached).await?;
    let mut log = before.clone();
    let mut existing = existing_by_key(&mut tx, batch).await?;
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
    let checkpoint = if log.size() > before.size() {
        let note = log::sign_checkpoint(signer, &log)?;
        insert_all(&mut tx, &rows, &pending, Some((log.size(), &note))).await?;
        Some(note)
    } else {
        None
    };
    tx.commit().await.map_err(backend)?;
    Ok((results, checkpoint, log))
}

/// Staged rows in one statement: the decisions, their tokens, the log
/// entries and stored hashes, and the signed checkpoint if there is one, as
/// data-modifying CTEs over `UNNEST`ed arrays (an empty array inserts
/// nothing). A decision or token that exists already refuses the whole
/// statement ([`StoreError::Duplicate`]).
async fn insert_all(
    conn: &mut PgConnection,
    rows: &Rows,
    pending: &log::Pending,
    checkpoint: Option<(u64, &str)>,
) -> StoreResult<()> {
    let t = TokenColumns::of(&rows.tokens);
    sqlx::query(
        "WITH d AS (
             INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index)
             SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[], $8::TEXT[], $9::BIGINT[])
         ), t AS (
             INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
             SELECT * FROM UNNEST($10::TEXT[], $11::TEXT[], $12::TEXT[], $13::TEXT[], $14::BIGINT[], $15::BIGINT[])
         ), e AS (
             INSERT INTO log_entries (idx, kind, ref_id, leaf)
             SELECT * FROM UNNEST($16::BIGINT[], $17::TEXT[], $18::TEXT[], $19::BYTEA[])
         ), h AS (
             INSERT INTO log_hashes (idx, hash) SELECT * FROM UNNEST($20::BIGINT[], $21::BYTEA[])
         )
         INSERT INTO checkpoints (size, note, created_at_ms)
         SELECT $22, $23, $24 WHERE $23::TEXT IS NOT NULL
         ON CONFLICT (size) DO NOTHING",
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
    .execute(conn)
    .await
    .map_err(refused)?;
    Ok(())
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
    insert_all(conn, &rows, &pending, None).await?;
    Ok(CreateOutcome::Created {
        log_index,
        checkpoint: None,
    })
}
