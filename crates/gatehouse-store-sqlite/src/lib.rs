//! The embedded default store: one SQLite file in WAL mode with
//! `synchronous=FULL`, written by a single thread that group-commits.
//!
//! Every write is a job sent to the writer thread. The writer takes all jobs
//! that are waiting, runs each inside its own savepoint (so one failing job
//! cannot undo another), commits once, and only then answers each caller.
//! Concurrent requests therefore share one fsync instead of paying one each,
//! and no caller hears "stored" before its data is durable.

//!
//! One file per capability: `decisions.rs`, `reviews.rs`, `keys.rs`,
//! `tokens.rs`, `evidence.rs`, `policies.rs`, `log_reads.rs`; log appends
//! in `log.rs`, the writer in `writer.rs` (its transaction view in
//! `tx.rs`), rows through the shared mapping in `rows.rs`.

mod checkpointer;
mod decisions;
mod evidence;
mod hooks;
mod keys;
mod log;
mod log_reads;
mod outbox;
mod policies;
mod reviews;
mod rows;
mod sessions;
mod tokens;
mod tx;
mod users;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_store::{Store, StoreError, StoreResult};
use rusqlite::{Connection, OpenFlags};

use crate::checkpointer::Checkpointer;
use crate::rows::backend;
use crate::writer::Writer;

const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_initial.sql"),
    include_str!("../migrations/0002_log.sql"),
    include_str!("../migrations/0003_tokens.sql"),
    include_str!("../migrations/0004_executions.sql"),
    include_str!("../migrations/0005_token_keys.sql"),
    include_str!("../migrations/0006_task_index.sql"),
    include_str!("../migrations/0007_leaf_hashes.sql"),
    include_str!("../migrations/0008_token_key_expiry.sql"),
    include_str!("../migrations/0009_key_principal.sql"),
    include_str!("../migrations/0010_readiness.sql"),
    include_str!("../migrations/0011_unsigned_tokens.sql"),
    include_str!("../migrations/0012_users.sql"),
    include_str!("../migrations/0013_review_rules.sql"),
    include_str!("../migrations/0014_sessions.sql"),
    include_str!("../migrations/0015_outbox.sql"),
    include_str!("../migrations/0016_sign_in_links.sql"),
    include_str!("../migrations/0017_due_order.sql"),
    include_str!("../migrations/0018_hooks.sql"),
];
const DB_FILE: &str = "gatehouse.db";

/// Read connections open at once by default: reads are short, and more
/// connections than cores only add memory (each has its own page cache).
pub const DEFAULT_READ_CONNECTIONS: usize = 8;

pub struct SqliteStore {
    writer: Writer,
    verifier_key: String,
    readers: Arc<Mutex<Vec<Connection>>>,
    /// One permit per read connection; a read waits for one, so the pool
    /// (and the blocking threads reading) never grow past the limit.
    read_slots: Arc<tokio::sync::Semaphore>,
    path: PathBuf,
    _checkpointer: Checkpointer,
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    // 32 MiB of page cache (negative = KiB). With SQLite's 2 MiB default the
    // index pages of a large table are evicted and dirty pages of a batch
    // spill to the WAL mid-transaction, which shows up as commit stalls.
    conn.pragma_update(None, "cache_size", -32_768)?;
    // Every job in a group commit runs in a savepoint, and SQLite copies
    // each page a savepoint first touches into a sub-journal, a temporary
    // file by default: a write system call per page, about a tenth of the
    // server's CPU under load. In memory it costs a copy. Nothing durable
    // lives there: the sub-journal only serves ROLLBACK TO.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    Ok(())
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `dir` and runs migrations.
    /// `signer` signs the log's checkpoints.
    pub fn open(dir: &Path, signer: Arc<LogSigner>) -> StoreResult<Self> {
        Self::open_with(dir, signer, DEFAULT_READ_CONNECTIONS)
    }

    /// [`SqliteStore::open`] with at most `read_connections` reads at once.
    pub fn open_with(
        dir: &Path,
        signer: Arc<LogSigner>,
        read_connections: usize,
    ) -> StoreResult<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        owner_only(&path)?;
        let mut conn = Connection::open(&path).map_err(backend)?;
        configure(&conn).map_err(backend)?;
        migrate(&mut conn).map_err(backend)?;
        conn.pragma_update(
            None,
            "wal_autocheckpoint",
            checkpointer::WRITER_AUTOCHECKPOINT_PAGES,
        )
        .map_err(backend)?;
        let checkpointer = Checkpointer::start(&path).map_err(backend)?;
        Ok(SqliteStore {
            _checkpointer: checkpointer,
            verifier_key: signer.verifier_key().to_string(),
            writer: Writer::start(conn, signer),
            readers: Arc::new(Mutex::new(Vec::new())),
            read_slots: Arc::new(tokio::sync::Semaphore::new(read_connections.max(1))),
            path,
        })
    }

    /// Runs `f` on a pooled read connection on the blocking thread pool.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        let slot = self
            .read_slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Backend("reader pool closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            let pooled = readers
                .lock()
                .map_err(|_| StoreError::Backend("reader pool poisoned".into()))?
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => {
                    let c = Connection::open_with_flags(
                        &path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )
                    .map_err(backend)?;
                    c.busy_timeout(std::time::Duration::from_secs(5))
                        .map_err(backend)?;
                    c
                }
            };
            let result = f(&conn);
            if let Ok(mut pool) = readers.lock() {
                pool.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reader task failed: {e}")))?
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|c| {
            let mut tables = gatehouse_store::TABLES.to_vec();
            tables.push("token_key_expiry");
            // Stepped, not only prepared: a connection compiles against the
            // schema it last read, and notices a change only when it runs.
            c.prepare(&gatehouse_store::schema_probe_sql(&tables))
                .and_then(|mut stmt| stmt.query([])?.next().map(|_| ()))
                .map_err(backend)
        })
        .await?;
        self.writer
            .run(|t| {
                t.prepare_cached(
                    "INSERT INTO readiness (id, checked_at) VALUES (1, datetime('now')) \
                     ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at",
                )
                .and_then(|mut stmt| stmt.execute([]))
                .map(drop)
                .map_err(backend)
            })
            .await?;
        room_to_write(&self.path)
    }
}

#[cfg(test)]
mod tests;

/// Free space below which the store reports itself unavailable. SQLite
/// can go on committing into WAL pages it already has on a full disk, so
/// a write that succeeds does not prove the next, larger one will.
const MIN_FREE_BYTES: u64 = 1024 * 1024;

fn room_to_write(db: &Path) -> StoreResult<()> {
    let dir = db.parent().unwrap_or(Path::new("."));
    let stat = rustix::fs::statvfs(dir)
        .map_err(|e| StoreError::Unavailable(format!("cannot read free space: {e}")))?;
    let free = stat.f_bavail.saturating_mul(stat.f_frsize);
    if free < MIN_FREE_BYTES {
        return Err(StoreError::Unavailable(format!(
            "{} has {free} bytes free",
            dir.display()
        )));
    }
    Ok(())
}

/// Creates the database file with owner-only access, or narrows an
/// existing one to it: the database holds approval tokens and the log.
/// SQLite gives its WAL and shared-memory files the database file's mode.
fn owner_only(path: &Path) -> StoreResult<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cannot = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(path)
            .map_err(cannot)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(cannot)?;
    }
    Ok(())
}
