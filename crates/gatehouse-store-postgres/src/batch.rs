//! Group commit for decisions on PostgreSQL.
//!
//! Appends are serialised by one advisory lock (see `log`). Taking it once
//! per decision would cap throughput at one transaction's round trips per
//! decision; instead a task per replica takes every decision waiting to be
//! stored, runs them in one transaction under one lock (each in a savepoint,
//! so one failure cannot undo another), signs one checkpoint, commits once,
//! and only then answers each caller.

use std::sync::Arc;

use gatehouse_core::decision::to_unix_millis;
use gatehouse_core::Decision;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::Entry;
use gatehouse_store::{CreateOutcome, IssuedToken, StoreError, StoreResult};
use sqlx::{PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::{backend, decision_from_row, json, log, DECISION_COLUMNS};

const MAX_BATCH: usize = 512;

struct Job {
    decision: Decision,
    entry: Entry,
    token: Option<(IssuedToken, Entry)>,
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

    pub async fn create(
        &self,
        decision: &Decision,
        token: Option<&IssuedToken>,
    ) -> StoreResult<CreateOutcome> {
        let (reply, rx) = oneshot::channel();
        let job = Job {
            token: token.map(|t| {
                let entry =
                    Entry::token_issued(&t.decision_id, &t.jti, &t.kid, t.expires_at, t.created_at);
                (t.clone(), entry)
            }),
            entry: Entry::decision(decision),
            body: json(decision)?,
            decision: decision.clone(),
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
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        match commit_batch(&pool, &signer, &batch).await {
            Ok((results, checkpoint)) => {
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

type BatchResult = (Vec<StoreResult<CreateOutcome>>, Option<String>);

async fn commit_batch(
    pool: &PgPool,
    signer: &LogSigner,
    batch: &[Job],
) -> StoreResult<BatchResult> {
    let mut tx = pool.begin().await.map_err(backend)?;
    log::lock(&mut tx).await?;
    let before = log::size(&mut tx).await?;
    let mut results = Vec::with_capacity(batch.len());
    for job in batch {
        sqlx::query("SAVEPOINT job")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let result = create_one(&mut tx, job).await;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT job"
        } else {
            "ROLLBACK TO SAVEPOINT job"
        };
        sqlx::query(end).execute(&mut *tx).await.map_err(backend)?;
        results.push(result);
    }
    let checkpoint = if log::size(&mut tx).await? > before {
        log::checkpoint(&mut tx, signer).await?
    } else {
        None
    };
    tx.commit().await.map_err(backend)?;
    Ok((results, checkpoint))
}

/// Stores one decision inside the batch's transaction. Holding the log lock
/// makes the idempotency check authoritative across replicas.
async fn create_one(conn: &mut PgConnection, job: &Job) -> StoreResult<CreateOutcome> {
    let d = &job.decision;
    if let Some(key) = &d.idempotency_key {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE created_by = $1 AND idempotency_key = $2"
        );
        let existing = sqlx::query(&sql)
            .bind(&d.created_by)
            .bind(key)
            .fetch_optional(&mut *conn)
            .await
            .map_err(backend)?;
        if let Some(row) = existing {
            return Ok(CreateOutcome::Existing(Box::new(decision_from_row(&row)?)));
        }
    }
    let log_index = log::append(conn, &job.entry).await?;
    let inserted = sqlx::query(
        "INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&d.id)
    .bind(&d.created_by)
    .bind(&d.idempotency_key)
    .bind(&d.request.task_id)
    .bind(d.status.as_str())
    .bind(d.deadline.map(to_unix_millis))
    .bind(to_unix_millis(d.created_at))
    .bind(&job.body)
    .bind(log_index as i64)
    .execute(&mut *conn)
    .await;
    match inserted {
        Ok(_) => {
            if let Some((t, entry)) = &job.token {
                sqlx::query(
                    "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(&t.decision_id)
                .bind(&t.jti)
                .bind(&t.kid)
                .bind(&t.token)
                .bind(to_unix_millis(t.expires_at))
                .bind(to_unix_millis(t.created_at))
                .execute(&mut *conn)
                .await
                .map_err(backend)?;
                log::append(conn, entry).await?;
            }
            Ok(CreateOutcome::Created {
                log_index,
                checkpoint: None,
            })
        }
        Err(e) if crate::is_unique_violation(&e) => Err(StoreError::Duplicate),
        Err(e) => Err(backend(e)),
    }
}
