//! The embedded default store: one SQLite file in WAL mode with
//! `synchronous=FULL`, written by a single thread that group-commits.
//!
//! Every write is a job sent to the writer thread. The writer takes all jobs
//! that are waiting, runs each inside its own savepoint (so one failing job
//! cannot undo another), commits once, and only then answers each caller.
//! Concurrent requests therefore share one fsync instead of paying one each,
//! and no caller hears "stored" before its data is durable.

mod checkpointer;
mod log;
mod rows;
mod writer;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review, Status, TaskEvent};
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::{KeyChange, LogEntry};
use gatehouse_log::Hash;
use gatehouse_store::{
    ApiKey, CreateOutcome, DecisionQuery, IssuedToken, NewDecision, PolicyVersion, Redemption,
    Role, Store, StoreError, StoreResult,
};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use time::OffsetDateTime;

use crate::checkpointer::Checkpointer;
use crate::rows::{backend, decision_from_row, key_from_row, DECISION_COLUMNS};
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
];
const DB_FILE: &str = "gatehouse.db";

/// The decision list query for the filters that are set (see
/// `DecisionQuery::filters`), newest first; the last parameter is the limit.
fn list_sql(filters: &[(&str, &str)]) -> String {
    let mut sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE 1");
    for (i, (condition, _)) in filters.iter().enumerate() {
        sql.push_str(&format!(" AND {condition} ?{}", i + 1));
    }
    sql.push_str(&format!(" ORDER BY id DESC LIMIT ?{}", filters.len() + 1));
    sql
}

/// Without statistics SQLite prefers the status index here, which reads
/// every pending row on every sweep (a full-table-sized stall on the single
/// writer once many decisions are pending); the partial deadline index reads
/// only the due ones.
const EXPIRE_DUE_SQL: &str = "UPDATE decisions INDEXED BY decisions_pending_deadline
     SET status = 'expired', resolved_at_ms = ?1
     WHERE status = 'pending_review' AND deadline_ms <= ?1 RETURNING id";

pub struct SqliteStore {
    writer: Writer,
    verifier_key: String,
    readers: Arc<Mutex<Vec<Connection>>>,
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
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
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
            path,
        })
    }

    /// Inserts a record row (`executions` or `outcomes`) and its log entry
    /// in one writer job; returns the entry's index.
    async fn insert_logged(
        &self,
        table: &'static str,
        id: &str,
        decision_id: &str,
        body: String,
        entry: LogEntry,
    ) -> StoreResult<u64> {
        let (id, decision_id) = (id.to_string(), decision_id.to_string());
        self.writer
            .run(move |conn| {
                let index = log::append(conn, &entry)?;
                let sql = format!("INSERT INTO {table} (id, decision_id, body, log_index) VALUES (?1, ?2, ?3, ?4)");
                conn.execute(&sql, params![id, decision_id, body, index as i64])
                    .map_err(backend)?;
                Ok(index)
            })
            .await
    }

    /// Runs `f` on a pooled read connection on the blocking thread pool.
    async fn read<R, F>(&self, f: F) -> StoreResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<R> + Send + 'static,
    {
        let readers = self.readers.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
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

fn find_decision(conn: &Connection, id: &str) -> StoreResult<Option<Decision>> {
    let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = ?1");
    conn.prepare_cached(&sql)
        .map_err(backend)?
        .query_row(params![id], decision_from_row)
        .optional()
        .map_err(backend)?
        .transpose()
}

/// Stores a decision's token unless it has one; true if stored.
fn insert_token(conn: &Connection, t: &IssuedToken) -> StoreResult<bool> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (decision_id) DO NOTHING",
        )
        .map_err(backend)?
        .execute(params![
            t.decision_id,
            t.jti,
            t.kid,
            t.token,
            to_unix_millis(t.expires_at),
            to_unix_millis(t.created_at)
        ])
        .map_err(backend)?;
    if inserted > 0 {
        // Keeps the key in the JWKS until this token expires, even when a
        // server that has not yet seen a rotation signs with a retired key.
        conn.prepare_cached(
            "INSERT INTO token_key_expiry (kid, last_expires_at_ms) VALUES (?1, ?2)
             ON CONFLICT (kid) DO UPDATE SET last_expires_at_ms =
                 MAX(last_expires_at_ms, excluded.last_expires_at_ms)",
        )
        .map_err(backend)?
        .execute(params![t.kid, to_unix_millis(t.expires_at)])
        .map_err(backend)?;
    }
    Ok(inserted > 0)
}

fn find_token(conn: &Connection, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
    conn.query_row(
        "SELECT decision_id, jti, kid, token, expires_at_ms, created_at_ms FROM approval_tokens WHERE decision_id = ?1",
        params![decision_id],
        |r| {
            Ok(IssuedToken {
                decision_id: r.get(0)?,
                jti: r.get(1)?,
                kid: r.get(2)?,
                token: r.get(3)?,
                expires_at: from_unix_millis(r.get(4)?),
                created_at: from_unix_millis(r.get(5)?),
            })
        },
    )
    .optional()
    .map_err(backend)
}

/// JSON bodies selected by one id parameter, decoded.
fn bodies<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    id: &str,
) -> StoreResult<Vec<T>> {
    let mut stmt = conn.prepare_cached(sql).map_err(backend)?;
    let rows = stmt
        .query_map(params![id], |r| r.get::<_, String>(0))
        .map_err(backend)?
        .collect::<Result<Vec<_>, _>>()
        .map_err(backend)?;
    rows.iter()
        .map(|b| serde_json::from_str(b).map_err(|e| StoreError::Corrupt(e.to_string())))
        .collect()
}

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(|e| StoreError::Corrupt(e.to_string()))
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
        self.writer.run(|_| Ok(())).await
    }

    async fn insert_decision(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome> {
        // Serialised here, off the single writer thread.
        let body = json(&new.decision)?;
        let (outcome, checkpoint) = self
            .writer
            .run_logged_unguarded(move |conn| {
                let NewDecision {
                    decision: d,
                    leaf,
                    token,
                } = &*new;
                if let Some(key) = &d.idempotency_key {
                    let sql = format!(
                        "SELECT {DECISION_COLUMNS} FROM decisions WHERE created_by = ?1 AND idempotency_key = ?2"
                    );
                    let existing = conn
                        .prepare_cached(&sql)
                        .map_err(backend)?
                        .query_row(params![d.created_by, key], decision_from_row)
                        .optional()
                        .map_err(backend)?;
                    if let Some(existing) = existing {
                        return Ok(CreateOutcome::Existing(Box::new(existing?)));
                    }
                }
                // The decision goes first, at the index its entry will take:
                // if it is refused, nothing has been written (this job has no
                // savepoint), and if anything after it fails, the writer rolls
                // back the whole batch.
                let log_index = conn.log.borrow().size();
                let inserted = conn
                    .prepare_cached(
                        "INSERT INTO decisions (id, created_by, idempotency_key, task_id, status, deadline_ms, created_at_ms, body, log_index)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )
                    .map_err(backend)?
                    .execute(params![
                        d.id,
                        d.created_by,
                        d.idempotency_key,
                        d.request.task_id,
                        d.status.as_str(),
                        d.deadline.map(to_unix_millis),
                        to_unix_millis(d.created_at),
                        body,
                        log_index as i64
                    ]);
                match inserted {
                    Ok(_) => {
                        if log::append_leaf(conn, leaf)? != log_index {
                            return Err(StoreError::Corrupt("log index moved mid-job".into()));
                        }
                        if let Some((t, leaf)) = token {
                            insert_token(conn, t)?;
                            log::append_leaf(conn, leaf)?;
                        }
                        Ok(CreateOutcome::Created {
                            log_index,
                            checkpoint: None,
                        })
                    }
                    Err(rusqlite::Error::SqliteFailure(e, _))
                        if e.code == rusqlite::ErrorCode::ConstraintViolation =>
                    {
                        Err(StoreError::Duplicate)
                    }
                    Err(e) => Err(backend(e)),
                }
            })
            .await?;
        Ok(match outcome {
            CreateOutcome::Created { log_index, .. } => CreateOutcome::Created {
                log_index,
                checkpoint: checkpoint.map(|c| c.to_string()),
            },
            existing => existing,
        })
    }

    async fn get_decision(&self, id: &str) -> StoreResult<Option<Decision>> {
        let id = id.to_string();
        self.read(move |c| find_decision(c, &id)).await
    }

    async fn list_decisions(&self, query: &DecisionQuery) -> StoreResult<Vec<Decision>> {
        let q = query.clone();
        self.read(move |c| {
            let filters = q.filters();
            let mut stmt = c.prepare_cached(&list_sql(&filters)).map_err(backend)?;
            let mut args: Vec<&dyn rusqlite::ToSql> = filters
                .iter()
                .map(|(_, v)| v as &dyn rusqlite::ToSql)
                .collect();
            args.push(&q.limit);
            let rows = stmt
                .query_map(args.as_slice(), decision_from_row)
                .map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
        .await
    }

    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision> {
        let id = id.to_string();
        let review = review.clone();
        self.writer
            .run(move |conn| {
                let current = find_decision(conn, &id)?.ok_or(StoreError::NotFound)?;
                if current.status != Status::PendingReview {
                    return Err(StoreError::NotPending(current.status.as_str().into()));
                }
                if current.deadline.is_some_and(|d| review.reviewed_at >= d) {
                    return Err(StoreError::NotPending(Status::Expired.as_str().into()));
                }
                let status = review.resulting_status();
                conn.prepare_cached(
                    "UPDATE decisions SET status = ?2, review = ?3, resolved_at_ms = ?4
                     WHERE id = ?1 AND status = 'pending_review'",
                )
                .map_err(backend)?
                .execute(params![
                    id,
                    status.as_str(),
                    json(&review)?,
                    to_unix_millis(review.reviewed_at)
                ])
                .map_err(backend)?;
                log::append(conn, &LogEntry::review(&id, &review))?;
                Ok(Decision {
                    status,
                    resolved_at: Some(review.reviewed_at),
                    review: Some(review),
                    ..current
                })
            })
            .await
    }

    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        self.writer
            .run(move |conn| {
                let ids = conn
                    .prepare_cached(EXPIRE_DUE_SQL)
                    .map_err(backend)?
                    .query_map(params![now_ms], |r| r.get::<_, String>(0))
                    .map_err(backend)?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(backend)?;
                for id in &ids {
                    log::append(conn, &LogEntry::expiry(id, now))?;
                }
                Ok(ids)
            })
            .await
    }

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()> {
        let (id, task, body) = (event.id.clone(), event.task_id.clone(), json(event)?);
        let entry = LogEntry::task_event(event);
        self.writer
            .run(move |conn| {
                conn.prepare_cached("INSERT INTO events (id, task_id, body) VALUES (?1, ?2, ?3)")
                    .map_err(backend)?
                    .execute(params![id, task, body])
                    .map_err(backend)?;
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>> {
        let task = task_id.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT body FROM events WHERE task_id = ?1 ORDER BY seq")
                .map_err(backend)?;
            let bodies = stmt
                .query_map(params![task], |r| r.get::<_, String>(0))
                .map_err(backend)?
                .collect::<Result<Vec<_>, _>>()
                .map_err(backend)?;
            bodies
                .iter()
                .map(|b| serde_json::from_str(b).map_err(|e| StoreError::Corrupt(e.to_string())))
                .collect()
        })
        .await
    }

    async fn save_policy_version(&self, version: &PolicyVersion) -> StoreResult<()> {
        let v = version.clone();
        self.writer
            .run(move |conn| {
                let inserted = conn
                    .execute(
                        "INSERT INTO policy_versions (version, files_json, first_used_at_ms) VALUES (?1, ?2, ?3)
                         ON CONFLICT (version) DO NOTHING",
                        params![v.version, v.files_json, to_unix_millis(v.first_used_at)],
                    )
                    .map_err(backend)?;
                if inserted > 0 {
                    let entry = LogEntry::policy_version(&v.version, &v.files_json, v.first_used_at);
                    log::append(conn, &entry)?;
                }
                Ok(())
            })
            .await
    }

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>> {
        let version = version.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT version, files_json, first_used_at_ms FROM policy_versions WHERE version = ?1",
                params![version],
                |r| {
                    Ok(PolicyVersion {
                        version: r.get(0)?,
                        files_json: r.get(1)?,
                        first_used_at: from_unix_millis(r.get(2)?),
                    })
                },
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn create_key(&self, key: &ApiKey) -> StoreResult<()> {
        let k = key.clone();
        self.writer
            .run(move |conn| {
                conn.execute(
                    "INSERT INTO api_keys (id, name, role, secret_hash, created_at_ms, revoked_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    params![
                        k.id,
                        k.name,
                        k.role.as_str(),
                        k.secret_hash,
                        to_unix_millis(k.created_at),
                        k.revoked_at.map(to_unix_millis)
                    ],
                )
                .map_err(backend)?;
                let entry = LogEntry::api_key(&k.id, KeyChange::Created, k.role, k.created_at);
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        let id = id.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT id, name, role, secret_hash, created_at_ms, revoked_at_ms FROM api_keys WHERE id = ?1",
                params![id],
                key_from_row,
            )
            .optional()
            .map_err(backend)?
            .transpose()
        })
        .await
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        self.read(|c| {
            let mut stmt = c
                .prepare("SELECT id, name, role, secret_hash, created_at_ms, revoked_at_ms FROM api_keys ORDER BY id")
                .map_err(backend)?;
            let rows = stmt.query_map([], key_from_row).map_err(backend)?;
            rows.map(|r| r.map_err(backend)?).collect()
        })
        .await
    }

    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let id = id.to_string();
        let at = from_unix_millis(to_unix_millis(at));
        self.writer
            .run(move |conn| {
                let found: Option<(String, Option<i64>)> = conn
                    .query_row(
                        "SELECT role, revoked_at_ms FROM api_keys WHERE id = ?1",
                        params![id],
                        |r| Ok((r.get(0)?, r.get(1)?)),
                    )
                    .optional()
                    .map_err(backend)?;
                let Some((role, revoked_at)) = found else {
                    return Ok(false);
                };
                // Revoking twice keeps the first time and logs nothing new.
                if revoked_at.is_none() {
                    conn.execute(
                        "UPDATE api_keys SET revoked_at_ms = ?2 WHERE id = ?1",
                        params![id, to_unix_millis(at)],
                    )
                    .map_err(backend)?;
                    let role = Role::parse(&role).ok_or_else(|| {
                        StoreError::Corrupt(format!("key {id} has role {role:?}"))
                    })?;
                    log::append(conn, &LogEntry::api_key(&id, KeyChange::Revoked, role, at))?;
                }
                Ok(true)
            })
            .await
    }

    async fn issue_token(&self, token: &IssuedToken) -> StoreResult<IssuedToken> {
        let t = token.clone();
        let entry =
            LogEntry::token_issued(&t.decision_id, &t.jti, &t.kid, t.expires_at, t.created_at);
        self.writer
            .run(move |conn| {
                if insert_token(conn, &t)? {
                    log::append(conn, &entry)?;
                    return Ok(t);
                }
                find_token(conn, &t.decision_id)?
                    .ok_or_else(|| StoreError::Corrupt("token vanished".into()))
            })
            .await
    }

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
        let id = decision_id.to_string();
        self.read(move |c| find_token(c, &id)).await
    }

    async fn redeem_token(&self, r: &Redemption) -> StoreResult<u64> {
        let r = r.clone();
        let at = from_unix_millis(to_unix_millis(r.at));
        self.writer
            .run(move |conn| {
                let used: Option<i64> = conn
                    .query_row("SELECT 1 FROM token_redemptions WHERE jti = ?1", params![r.jti], |row| {
                        row.get(0)
                    })
                    .optional()
                    .map_err(backend)?;
                if used.is_some() {
                    return Err(StoreError::AlreadyRedeemed);
                }
                let index = log::append(conn, &LogEntry::token_redeemed(&r.decision_id, &r.jti, &r.redeemed_by, at))?;
                conn.execute(
                    "INSERT INTO token_redemptions (jti, decision_id, redeemed_by, redeemed_at_ms, log_index)
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![r.jti, r.decision_id, r.redeemed_by, to_unix_millis(at), index as i64],
                )
                .map_err(backend)?;
                Ok(index)
            })
            .await
    }

    async fn record_execution(
        &self,
        receipt: &ExecutionReceipt,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        let entry = LogEntry::execution(receipt, at);
        let body = json(receipt)?;
        self.insert_logged(
            "executions",
            &receipt.execution_id,
            &receipt.decision_id,
            body,
            entry,
        )
        .await
    }

    async fn record_outcome(
        &self,
        outcome: &OutcomeRecord,
        at: OffsetDateTime,
    ) -> StoreResult<u64> {
        let entry = LogEntry::outcome(outcome, at);
        let body = json(outcome)?;
        self.insert_logged(
            "outcomes",
            &outcome.outcome_id,
            &outcome.decision_id,
            body,
            entry,
        )
        .await
    }

    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let (id, reason) = (decision_id.to_string(), reason.to_string());
        let entry = LogEntry::flag(&id, &reason, at);
        self.writer
            .run(move |conn| {
                let n = conn
                    .execute(
                        "UPDATE decisions SET flag_reason = ?2 WHERE id = ?1",
                        params![id, reason],
                    )
                    .map_err(backend)?;
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>> {
        let id = decision_id.to_string();
        self.read(move |c| {
            bodies(
                c,
                "SELECT body FROM executions WHERE decision_id = ?1 ORDER BY id",
                &id,
            )
        })
        .await
    }

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>> {
        let id = decision_id.to_string();
        self.read(move |c| {
            bodies(
                c,
                "SELECT body FROM outcomes WHERE decision_id = ?1 ORDER BY id",
                &id,
            )
        })
        .await
    }

    async fn retire_token_key(
        &self,
        kid: &str,
        jwk_json: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let (kid, jwk) = (kid.to_string(), jwk_json.to_string());
        let at = from_unix_millis(to_unix_millis(at));
        self.writer
            .run(move |conn| {
                let inserted = conn
                    .execute(
                        "INSERT INTO token_keys (kid, jwk, retired_at_ms) VALUES (?1, ?2, ?3) ON CONFLICT (kid) DO NOTHING",
                        params![kid, jwk, to_unix_millis(at)],
                    )
                    .map_err(backend)?;
                if inserted == 0 {
                    return Ok(false);
                }
                log::append(conn, &LogEntry::token_key_retired(&kid, at))?;
                Ok(true)
            })
            .await
    }

    async fn retired_token_keys_in_use(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT k.jwk FROM token_keys k JOIN token_key_expiry e ON e.kid = k.kid
                     WHERE e.last_expires_at_ms > ?1 ORDER BY k.kid",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![now_ms], |r| r.get::<_, String>(0))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    fn log_verifier_key(&self) -> &str {
        &self.verifier_key
    }

    async fn log_size(&self) -> StoreResult<u64> {
        self.read(log::size).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.query_row(
                "SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }

    async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<HashMap<u64, Hash>> {
        self.read(move |c| log::read_hashes(c, &indexes)).await
    }

    async fn log_entries_for(&self, ref_id: &str) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let id = ref_id.to_string();
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached("SELECT idx, leaf FROM log_entries WHERE ref_id = ?1 ORDER BY idx")
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![id], |r| Ok((r.get::<_, i64>(0)? as u64, r.get(1)?)))
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }

    async fn log_leaves(&self, from: u64, limit: u32) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        self.read(move |c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT idx, leaf FROM log_entries WHERE idx >= ?1 ORDER BY idx LIMIT ?2",
                )
                .map_err(backend)?;
            let rows = stmt
                .query_map(params![from as i64, limit], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
                })
                .map_err(backend)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(backend)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_sweep_reads_only_the_partial_deadline_index() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {EXPIRE_DUE_SQL}"))
            .unwrap()
            .query_map(params![0], |r| r.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(plan.len(), 1, "{plan:?}");
        assert!(plan[0].contains("decisions_pending_deadline"), "{plan:?}");
    }

    #[test]
    fn decision_lists_use_the_status_and_task_indexes() {
        let dir = tempfile::tempdir().unwrap();
        drop(SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let plan = |q: DecisionQuery| -> String {
            let filters = q.filters();
            let mut args: Vec<&dyn rusqlite::ToSql> = filters
                .iter()
                .map(|(_, v)| v as &dyn rusqlite::ToSql)
                .collect();
            args.push(&q.limit);
            conn.prepare(&format!("EXPLAIN QUERY PLAN {}", list_sql(&filters)))
                .unwrap()
                .query_map(args.as_slice(), |r| r.get::<_, String>(3))
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap()
                .join("; ")
        };
        let query = |status: Option<Status>, task: Option<&str>| DecisionQuery {
            status,
            task_id: task.map(str::to_string),
            before: Some("dec_zzz".into()),
            limit: 50,
        };
        let by_status = plan(query(Some(Status::PendingReview), None));
        assert!(by_status.contains("decisions_status"), "{by_status}");
        let by_task = plan(query(None, Some("task_1")));
        assert!(by_task.contains("decisions_task"), "{by_task}");
        assert!(
            !by_task.contains("TEMP B-TREE"),
            "sorts in memory: {by_task}"
        );
    }

    /// Readiness means the schema is usable: a missing table fails the ping.
    #[tokio::test]
    async fn ping_fails_when_a_table_is_missing() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
        store.ping().await.expect("a fresh database is ready");
        Connection::open(dir.path().join(DB_FILE))
            .unwrap()
            .execute_batch("DROP TABLE outcomes")
            .unwrap();
        assert!(store.ping().await.is_err(), "a missing table is not ready");
    }

    /// A log written before migration 0007 keeps its stored hashes in
    /// `log_hashes`: proofs over it, and appends after it, still work.
    #[tokio::test]
    async fn leaves_from_before_the_hashes_moved_into_their_rows_still_prove() {
        use gatehouse_log::tree::{Op, Output};
        use gatehouse_store::conformance::{sample_decision, test_signer};

        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path(), test_signer()).unwrap();
        for i in 0..5 {
            let d = sample_decision(gatehouse_core::Verdict::Allow, "k1", None, &format!("t{i}"));
            store.create_decision(&d, None).await.unwrap();
        }
        drop(store);
        // Move the first leaves' hashes into the old table, as a log written
        // before the migration has them.
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let mut moved = 0;
        for leaf in 0..3u64 {
            let packed: Vec<u8> = conn
                .query_row(
                    "SELECT hashes FROM log_entries WHERE idx = ?1",
                    [leaf as i64],
                    |r| r.get(0),
                )
                .unwrap();
            let first = tlog_tiles::tlog::stored_hash_index(0, leaf);
            for (k, h) in packed.chunks(32).enumerate() {
                conn.execute(
                    "INSERT INTO log_hashes (idx, hash) VALUES (?1, ?2)",
                    params![(first + k as u64) as i64, h],
                )
                .unwrap();
                moved += 1;
            }
            conn.execute(
                "UPDATE log_entries SET hashes = NULL WHERE idx = ?1",
                [leaf as i64],
            )
            .unwrap();
        }
        assert!(moved >= 4, "leaves 0..3 store at least 4 hashes");
        drop(conn);

        let store = SqliteStore::open(dir.path(), test_signer()).unwrap();
        let d = sample_decision(gatehouse_core::Verdict::Allow, "k1", None, "after");
        store.create_decision(&d, None).await.unwrap();
        let size = store.log_size().await.unwrap();
        let root = {
            let op = Op::Root { size };
            let Output::Root(root) = op
                .run(&store.read_log_hashes(op.needs().unwrap()).await.unwrap())
                .unwrap()
            else {
                unreachable!()
            };
            root
        };
        let leaves = store.log_leaves(0, 100).await.unwrap();
        for (index, bytes) in leaves {
            let op = Op::Inclusion { index, size };
            let Output::Proof(proof) = op
                .run(&store.read_log_hashes(op.needs().unwrap()).await.unwrap())
                .unwrap()
            else {
                unreachable!()
            };
            gatehouse_log::proof::verify_inclusion(
                &proof,
                size,
                root,
                index,
                gatehouse_log::proof::leaf_hash(&bytes),
            )
            .unwrap_or_else(|e| panic!("leaf {index}: {e:?}"));
        }
    }

    /// A job without a savepoint that fails after writing takes its batch
    /// down with it: its write must not be committed.
    #[tokio::test]
    async fn an_unguarded_job_failing_after_a_write_rolls_back_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(dir.path(), gatehouse_store::conformance::test_signer()).unwrap();
        let failed = store
            .writer
            .run_logged_unguarded(|t| {
                t.execute(
                    "INSERT INTO policy_versions (version, files_json, first_used_at_ms) VALUES ('pv', '[]', 0)",
                    [],
                )
                .map_err(backend)?;
                log::append(t, &LogEntry::expiry("dec_x", OffsetDateTime::now_utc()))?;
                Err::<(), _>(StoreError::Backend("refused after writing".into()))
            })
            .await;
        assert!(failed.is_err());
        assert_eq!(
            store.log_size().await.unwrap(),
            0,
            "the entry was rolled back"
        );
        assert!(store.get_policy_version("pv").await.unwrap().is_none());
        // A refusal before any write leaves the batch alone.
        let (refused, _) = tokio::join!(
            store
                .writer
                .run_logged_unguarded(|_| Err::<(), _>(StoreError::Duplicate)),
            store.writer.run_logged(|t| log::append(
                t,
                &LogEntry::expiry("dec_y", OffsetDateTime::now_utc())
            ))
        );
        assert!(matches!(refused, Err(StoreError::Duplicate)));
        assert_eq!(store.log_size().await.unwrap(), 1);
    }
}
