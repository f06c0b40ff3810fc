//! The single writer thread and its group commit.

use std::sync::mpsc;
use std::sync::Arc;

use gatehouse_log::checkpoint::LogSigner;

use gatehouse_store::{StoreError, StoreResult};
use rusqlite::Connection;
use tokio::sync::oneshot;

/// How many waiting jobs one transaction may take; bounds commit latency.
const MAX_BATCH: usize = 1024;

/// Called once the batch's fate is known: Ok if it committed, with the
/// checkpoint signed in the batch if it appended to the log.
type Reply = Box<dyn FnOnce(StoreResult<Option<Arc<str>>>) + Send>;
type Job = Box<dyn FnOnce(&Connection) -> Reply + Send>;

pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    pub fn start(conn: Connection, signer: Arc<LogSigner>) -> Self {
        let (jobs, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("gatehouse-sqlite-writer".into())
            .spawn(move || run_writer(conn, rx, &signer))
            .expect("spawning the SQLite writer thread");
        Writer { jobs }
    }

    /// Runs `f` inside the next group commit; resolves after the commit.
    pub async fn run<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        Ok(self.run_logged(f).await?.0)
    }

    /// Like [`Writer::run`], also returning the checkpoint its batch signed.
    pub async fn run_logged<R, F>(&self, f: F) -> StoreResult<(R, Option<Arc<str>>)>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let result = in_savepoint(conn, f);
            Box::new(move |committed: StoreResult<Option<Arc<str>>>| {
                let _ = tx.send(committed.and_then(|cp| result.map(|r| (r, cp))));
            })
        });
        self.jobs
            .send(job)
            .map_err(|_| StoreError::Backend("SQLite writer has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Backend("SQLite writer dropped a job".into()))?
    }
}

/// A failing job rolls back to its savepoint, leaving the batch intact.
fn in_savepoint<R>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> StoreResult<R>,
) -> StoreResult<R> {
    let sql = |s: &str| {
        conn.execute_batch(s)
            .map_err(|e| StoreError::Backend(e.to_string()))
    };
    sql("SAVEPOINT job")?;
    match f(conn) {
        Ok(r) => {
            sql("RELEASE job")?;
            Ok(r)
        }
        Err(e) => {
            sql("ROLLBACK TO job")?;
            sql("RELEASE job")?;
            Err(e)
        }
    }
}

fn run_writer(conn: Connection, rx: mpsc::Receiver<Job>, signer: &LogSigner) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            // None of these jobs ran. Dropping them drops their reply
            // channels, which each caller sees as a failed write.
            tracing::error!(error = %e, jobs = batch.len(), "cannot begin SQLite transaction");
            drop(batch);
            continue;
        }
        let size_before = crate::log::size(&conn);
        let replies: Vec<Reply> = batch.into_iter().map(|job| job(&conn)).collect();
        // One signed checkpoint per batch that appended to the log, inside
        // the same transaction: no caller hears "stored" before a checkpoint
        // covering its entry exists, and a failure to sign fails the batch.
        let checkpointed = match (size_before, crate::log::size(&conn)) {
            (Ok(before), Ok(after)) if before == after => Ok(None),
            (Ok(_), Ok(_)) => crate::log::checkpoint(&conn, signer)
                .map(|note| note.map(Arc::<str>::from))
                .map_err(|e| e.to_string()),
            (Err(e), _) | (_, Err(e)) => Err(e.to_string()),
        };
        let committed = checkpointed.and_then(|cp| {
            conn.execute_batch("COMMIT")
                .map(|()| cp)
                .map_err(|e| e.to_string())
        });
        if committed.is_err() {
            let _ = conn.execute_batch("ROLLBACK");
        }
        for reply in replies {
            reply(
                committed
                    .clone()
                    .map_err(|e| StoreError::Backend(format!("commit failed: {e}"))),
            );
        }
    }
}
