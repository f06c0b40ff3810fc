//! Copies the write-ahead log into the database file off the writer thread.
//!
//! By default SQLite checkpoints on the committing connection once the WAL
//! holds 1,000 pages, so the single writer stops taking jobs while it copies
//! pages and syncs the database file: about an eighth of its time under
//! load. This thread checkpoints from its own connection instead, in
//! PASSIVE mode (it never blocks the writer or readers). The writer keeps a
//! much larger automatic checkpoint as a backstop: that one runs between
//! its transactions, so it can finish the copy and let the WAL start over
//! from the beginning, which a checkpoint racing the writer cannot promise.

use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use rusqlite::Connection;

/// How often the thread checkpoints. Each round ends with a sync of the
/// database file, which shares the disk with the writer's WAL syncs: at
/// 100 ms the larger syncs doubled the decide p99 at 64 connections (about
/// 20 ms); at 20 ms it stays near 10 ms at the same throughput.
const INTERVAL: Duration = Duration::from_millis(20);

/// The writer's own automatic checkpoint, in pages (4 KiB each): about
/// 40 MiB of WAL. By the time it fires, this thread has copied most of it.
pub const WRITER_AUTOCHECKPOINT_PAGES: i64 = 10_000;

/// Stops the thread when dropped.
pub struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

impl Checkpointer {
    pub fn start(path: &Path) -> rusqlite::Result<Self> {
        let conn = Connection::open(path)?;
        crate::configure(&conn)?;
        let (stop, rx) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("gh-sqlite-ckpt".into())
            .spawn(move || {
                // The sender never sends: the loop ends when it is dropped.
                while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(INTERVAL) {
                    // A failure here (the database busy, say) is harmless:
                    // the next round or the writer's backstop catches up.
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
                    {
                        tracing::debug!(error = %e, "background WAL checkpoint failed");
                    }
                }
            })
            .expect("spawning the SQLite checkpoint thread");
        Ok(Checkpointer { _stop: stop })
    }
}
