//! The single writer thread and its group commit.

use std::sync::mpsc;
use std::sync::Arc;

use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::frontier::Frontier;
use gatehouse_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

use crate::tx::Tx;

/// How many waiting jobs one transaction may take; bounds commit latency.
const MAX_BATCH: usize = 1024;

/// How long a batch that already has company may wait for more jobs.
const GATHER: std::time::Duration = std::time::Duration::from_micros(500);
/// A pause in arrivals this long ends the wait early.
const GATHER_GAP: std::time::Duration = std::time::Duration::from_micros(100);

/// Called once the batch's fate is known: Ok if it committed, with the
/// checkpoint signed in the batch if it appended to the log.
type Reply = Box<dyn FnOnce(StoreResult<Option<Arc<str>>>) + Send>;
type Job = Box<dyn FnOnce(&Tx) -> Reply + Send>;

pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: Connection, signer: Arc<LogSigner>) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gh-sqlite-write".into())
            .spawn(move || run_writer(conn, rx, &signer))
            .expect("spawning the SQLite writer thread");
        Writer { jobs }
    }

    /// Runs `f` inside the next group commit; resolves after the commit.
    pub async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<R> + Send + 'static,
    {
        Ok(self.run_logged(f).await?.0)
    }

    /// Like [`Writer::run`], also returning the checkpoint its batch signed.
    pub async fn run_logged<R, F>(&self, f: F) -> StoreResult<(R, Option<Arc<str>>)>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<R> + Send + 'static,
    {
        self.submit(move |t| in_savepoint(t, f)).await
    }

    /// Like [`Writer::run_logged`] but without the job's own savepoint,
    /// which makes SQLite copy every page the job touches (a tenth of the
    /// writer's time on the decide path). For jobs that can only be refused
    /// before they write anything: a refused single-row INSERT leaves
    /// nothing behind. Should such a job fail after writing after all,
    /// nothing can undo just its writes, so the whole batch rolls back and
    /// every caller in it gets an error: never a half-stored job.
    pub async fn run_logged_unguarded<R, F>(&self, f: F) -> StoreResult<(R, Option<Arc<str>>)>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<R> + Send + 'static,
    {
        self.submit(move |t| {
            let (changes, size) = (t.total_changes(), t.log.borrow().size());
            let result = f(t);
            if result.is_err() && (t.total_changes() != changes || t.log.borrow().size() != size) {
                t.poisoned.set(true);
            }
            result
        })
        .await
    }

    async fn submit<R, F>(&self, f: F) -> StoreResult<(R, Option<Arc<str>>)>
    where
        R: Send + 'static,
        F: FnOnce(&Tx) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |t| {
            let result = f(t);
            Box::new(move |committed: StoreResult<Option<Arc<str>>>| {
                let _ = tx.send(committed.and_then(|cp| result.map(|r| (r, cp))));
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("SQLite writer has stopped".into()))?;
        rx.await
            // Jobs are dropped unrun only when their transaction could not
            // begin (a lock held too long, a full disk): an outage.
            .map_err(|_| StoreError::Unavailable("SQLite writer could not run the job".into()))?
    }
}

/// A failing job rolls back to its savepoint, leaving the batch intact; the
/// log's right edge is rolled back with it.
fn in_savepoint<R>(t: &Tx, f: impl FnOnce(&Tx) -> StoreResult<R>) -> StoreResult<R> {
    // Cached: these run twice per job, and parsing them each time showed.
    let sql = |s: &str| {
        t.prepare_cached(s)
            .and_then(|mut stmt| stmt.execute([]))
            .map(drop)
            .map_err(crate::rows::backend)
    };
    let log_before = t.log.borrow().clone();
    sql("SAVEPOINT job")?;
    match f(t) {
        Ok(r) => {
            sql("RELEASE job")?;
            Ok(r)
        }
        Err(e) => {
            *t.log.borrow_mut() = log_before;
            sql("ROLLBACK TO job")?;
            sql("RELEASE job")?;
            Err(e)
        }
    }
}

/// Takes jobs as they arrive until none has come for [`GATHER_GAP`] or
/// [`GATHER`] has passed, whichever is first.
fn gather(rx: &mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    let deadline = std::time::Instant::now() + GATHER;
    while batch.len() < MAX_BATCH {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left.min(GATHER_GAP)) {
            Ok(job) => {
                batch.push(job);
                drain(rx, batch);
            }
            Err(_) => break,
        }
    }
}

fn drain(rx: &mpsc::Receiver<Job>, batch: &mut Vec<Job>) {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(job) => batch.push(job),
            Err(_) => break,
        }
    }
}

fn run_writer(conn: Connection, rx: mpsc::Receiver<Job>, signer: &LogSigner) {
    // The right edge as of this thread's last commit. Other processes (the
    // CLI, say) may append between batches; the size check below notices.
    let mut cached: Option<Frontier> = None;
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        drain(&rx, &mut batch);
        if batch.len() > 1 {
            // Others are writing too: let the batch fill a little. Each
            // commit costs an fsync, a signed checkpoint and a rewrite of the
            // last page of every table and index it touches (about 14 on the
            // decide path), whatever its size. Without this pause batches
            // averaged 7 jobs at 64 connections and the writer spent about
            // 40 µs per decision; with 500 µs, about 20. A lone writer
            // never waits.
            gather(&rx, &mut batch);
        }
        let started = std::time::Instant::now();
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // None of these jobs ran. Dropping them drops their reply
            // channels, which each caller sees as a failed write.
            tracing::error!(error = %e, jobs = batch.len(), "cannot begin SQLite transaction");
            drop(batch);
            continue;
        }
        let frontier = match crate::log::frontier(&conn, cached.take()) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the log's right edge");
                let _ = conn.execute_batch("ROLLBACK");
                continue;
            }
        };
        let size_before = frontier.size();
        let t = Tx::new(&conn, frontier);
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&t)).collect();
        let poisoned = t.poisoned.get();
        let frontier = t.log.into_inner();
        // One signed checkpoint per batch that appended to the log, inside
        // the same transaction: no caller hears "stored" before a checkpoint
        // covering its entry exists, and a failure to sign fails the batch.
        let checkpointed = if poisoned {
            Err(StoreError::Backend(
                "a job failed part-way; the batch was rolled back".to_string(),
            ))
        } else if frontier.size() == size_before {
            Ok(None)
        } else {
            crate::log::checkpoint(&conn, signer, &frontier)
                .map(|note| Some(Arc::<str>::from(note)))
        };
        let committed = checkpointed.and_then(|cp| {
            conn.execute_batch("COMMIT")
                .map(|()| cp)
                .map_err(crate::rows::backend)
        });
        match committed {
            Ok(_) => {
                gatehouse_store::record_batch("sqlite", replies.len(), started.elapsed());
                cached = Some(frontier);
            }
            Err(_) => {
                let _ = conn.execute_batch("ROLLBACK");
            }
        }
        for reply in replies {
            reply(committed.clone().map_err(|e| e.context("commit failed")));
        }
    }
}
