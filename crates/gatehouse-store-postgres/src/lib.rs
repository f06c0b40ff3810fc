//! PostgreSQL store. Several `gatehouse serve` replicas may share one
//! database: idempotency rests on a unique index, reviews and expiry on
//! conditional updates, and log appends on one advisory lock (see `log`),
//! so no replica can act on a stale read.

mod batch;
mod log;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review, Status, TaskEvent};
use gatehouse_log::checkpoint::LogSigner;
use gatehouse_log::entry::{KeyChange, LogEntry};
use gatehouse_log::Hash;
use gatehouse_store::{
    decision_from_columns, ApiKey, CreateOutcome, DecisionQuery, IssuedToken, NewDecision,
    PolicyVersion, Redemption, Role, Store, StoreError, StoreResult,
};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Postgres, Row, Transaction};
use time::OffsetDateTime;

const DECISION_COLUMNS: &str = "body, status, review, resolved_at_ms, log_index, flag_reason";

pub struct PostgresStore {
    pool: PgPool,
    signer: Arc<LogSigner>,
    decisions: batch::Batcher,
}

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn json<T: serde::Serialize>(value: &T) -> StoreResult<String> {
    serde_json::to_string(value).map_err(corrupt)
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.code().as_deref() == Some("23505"))
}

fn decision_from_row(row: &PgRow) -> StoreResult<Decision> {
    let body: String = row.try_get(0).map_err(backend)?;
    let status: String = row.try_get(1).map_err(backend)?;
    let review: Option<String> = row.try_get(2).map_err(backend)?;
    let resolved_at: Option<i64> = row.try_get(3).map_err(backend)?;
    let log_index: Option<i64> = row.try_get(4).map_err(backend)?;
    let flag: Option<String> = row.try_get(5).map_err(backend)?;
    decision_from_columns(
        &body,
        &status,
        review.as_deref(),
        resolved_at,
        log_index,
        flag,
    )
}

fn key_from_row(row: &PgRow) -> StoreResult<ApiKey> {
    let role: String = row.try_get(2).map_err(backend)?;
    Ok(ApiKey {
        id: row.try_get(0).map_err(backend)?,
        name: row.try_get(1).map_err(backend)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("role {role:?}")))?,
        secret_hash: row.try_get(3).map_err(backend)?,
        created_at: from_unix_millis(row.try_get(4).map_err(backend)?),
        revoked_at: row
            .try_get::<Option<i64>, _>(5)
            .map_err(backend)?
            .map(from_unix_millis),
    })
}

impl PostgresStore {
    /// Connects and runs migrations. Migrations take a database-wide
    /// advisory lock, so replicas starting together do not race. `signer`
    /// signs the log's checkpoints; every replica must use the same key.
    pub async fn connect(url: &str, signer: Arc<LogSigner>) -> StoreResult<Self> {
        let options: PgConnectOptions = url.parse().map_err(backend)?;
        Self::connect_with(options, signer).await
    }

    pub async fn connect_with(
        options: PgConnectOptions,
        signer: Arc<LogSigner>,
    ) -> StoreResult<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(32)
            .acquire_timeout(std::time::Duration::from_secs(5))
            .connect_with(options)
            .await
            .map_err(backend)?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .map_err(|e| StoreError::Backend(format!("migration failed: {e}")))?;
        let decisions = batch::Batcher::start(pool.clone(), signer.clone());
        Ok(PostgresStore {
            pool,
            signer,
            decisions,
        })
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// A transaction holding the log lock, for writes that append.
    async fn logged_tx(&self) -> StoreResult<Transaction<'static, Postgres>> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        log::lock(&mut tx).await?;
        Ok(tx)
    }

    /// Ends a logged transaction with a checkpoint covering its entries.
    async fn commit_logged(
        &self,
        mut tx: Transaction<'static, Postgres>,
    ) -> StoreResult<Option<String>> {
        let note = log::checkpoint(&mut tx, &self.signer).await?;
        tx.commit().await.map_err(backend)?;
        Ok(note)
    }

    /// Inserts a record row (`executions` or `outcomes`) and its log entry
    /// in one logged transaction; returns the entry's index.
    async fn insert_logged(
        &self,
        table: &'static str,
        id: &str,
        decision_id: &str,
        body: String,
        entry: &LogEntry,
    ) -> StoreResult<u64> {
        let mut tx = self.logged_tx().await?;
        let index = log::append(&mut tx, entry).await?;
        let sql = format!(
            "INSERT INTO {table} (id, decision_id, body, log_index) VALUES ($1, $2, $3, $4)"
        );
        sqlx::query(&sql)
            .bind(id)
            .bind(decision_id)
            .bind(body)
            .bind(index as i64)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        self.commit_logged(tx).await?;
        Ok(index)
    }

    /// JSON bodies selected by one id parameter, decoded.
    async fn bodies<T: serde::de::DeserializeOwned>(
        &self,
        sql: &str,
        id: &str,
    ) -> StoreResult<Vec<T>> {
        let rows = sqlx::query(sql)
            .bind(id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get(0).map_err(backend)?;
                serde_json::from_str(&body).map_err(corrupt)
            })
            .collect()
    }

    async fn find(&self, id: &str) -> StoreResult<Option<Decision>> {
        let sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE id = $1");
        sqlx::query(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(decision_from_row)
            .transpose()
    }

    async fn find_idempotent(&self, created_by: &str, key: &str) -> StoreResult<Option<Decision>> {
        let sql = format!(
            "SELECT {DECISION_COLUMNS} FROM decisions WHERE created_by = $1 AND idempotency_key = $2"
        );
        sqlx::query(&sql)
            .bind(created_by)
            .bind(key)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?
            .as_ref()
            .map(decision_from_row)
            .transpose()
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        sqlx::query(&gatehouse_store::schema_probe_sql(&gatehouse_store::TABLES))
            .execute(&self.pool)
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn insert_decision(&self, new: Arc<NewDecision>) -> StoreResult<CreateOutcome> {
        let d = &new.decision;
        // A retry of an earlier idempotent request needs no lock or batch.
        if let Some(key) = &d.idempotency_key {
            if let Some(existing) = self.find_idempotent(&d.created_by, key).await? {
                return Ok(CreateOutcome::Existing(Box::new(existing)));
            }
        }
        self.decisions.create(new).await
    }

    async fn get_decision(&self, id: &str) -> StoreResult<Option<Decision>> {
        self.find(id).await
    }

    async fn list_decisions(&self, q: &DecisionQuery) -> StoreResult<Vec<Decision>> {
        let filters = q.filters();
        let mut sql = format!("SELECT {DECISION_COLUMNS} FROM decisions WHERE true");
        for (i, (condition, _)) in filters.iter().enumerate() {
            sql.push_str(&format!(" AND {condition} ${}", i + 1));
        }
        sql.push_str(&format!(" ORDER BY id DESC LIMIT ${}", filters.len() + 1));
        let mut query = sqlx::query(&sql);
        for (_, value) in &filters {
            query = query.bind(*value);
        }
        let rows = query
            .bind(i64::from(q.limit))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter().map(decision_from_row).collect()
    }

    async fn review_decision(&self, id: &str, review: &Review) -> StoreResult<Decision> {
        let status = review.resulting_status();
        let at = to_unix_millis(review.reviewed_at);
        let sql = format!(
            "UPDATE decisions SET status = $2, review = $3, resolved_at_ms = $4
             WHERE id = $1 AND status = 'pending_review' AND (deadline_ms IS NULL OR deadline_ms > $4)
             RETURNING {DECISION_COLUMNS}"
        );
        let mut tx = self.logged_tx().await?;
        let updated = sqlx::query(&sql)
            .bind(id)
            .bind(status.as_str())
            .bind(json(review)?)
            .bind(at)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(row) = updated {
            let decision = decision_from_row(&row)?;
            log::append(&mut tx, &LogEntry::review(id, review)).await?;
            self.commit_logged(tx).await?;
            return Ok(decision);
        }
        drop(tx);
        // Nothing changed: explain why from the current row.
        let current = self.find(id).await?.ok_or(StoreError::NotFound)?;
        if current.status == Status::PendingReview {
            return Err(StoreError::NotPending(Status::Expired.as_str().into()));
        }
        Err(StoreError::NotPending(current.status.as_str().into()))
    }

    async fn expire_due(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        let now_ms = to_unix_millis(now);
        let now = from_unix_millis(now_ms);
        // Cheap check first, so an idle sweep never takes the log lock.
        let due: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM decisions WHERE status = 'pending_review' AND deadline_ms <= $1 LIMIT 1",
        )
        .bind(now_ms)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        if due.is_none() {
            return Ok(Vec::new());
        }
        let mut tx = self.logged_tx().await?;
        let rows = sqlx::query(
            "UPDATE decisions SET status = 'expired', resolved_at_ms = $1
             WHERE status = 'pending_review' AND deadline_ms <= $1 RETURNING id",
        )
        .bind(now_ms)
        .fetch_all(&mut *tx)
        .await
        .map_err(backend)?;
        let ids: Vec<String> = rows
            .iter()
            .map(|r| r.try_get(0).map_err(backend))
            .collect::<StoreResult<_>>()?;
        for id in &ids {
            log::append(&mut tx, &LogEntry::expiry(id, now)).await?;
        }
        self.commit_logged(tx).await?;
        Ok(ids)
    }

    async fn add_event(&self, event: &TaskEvent) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        sqlx::query("INSERT INTO events (id, task_id, body) VALUES ($1, $2, $3)")
            .bind(&event.id)
            .bind(&event.task_id)
            .bind(json(event)?)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        log::append(&mut tx, &LogEntry::task_event(event)).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn list_events(&self, task_id: &str) -> StoreResult<Vec<TaskEvent>> {
        let rows = sqlx::query("SELECT body FROM events WHERE task_id = $1 ORDER BY seq")
            .bind(task_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let body: String = r.try_get(0).map_err(backend)?;
                serde_json::from_str(&body).map_err(corrupt)
            })
            .collect()
    }

    async fn save_policy_version(&self, v: &PolicyVersion) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO policy_versions (version, files_json, first_used_at_ms) VALUES ($1, $2, $3)
             ON CONFLICT (version) DO NOTHING",
        )
        .bind(&v.version)
        .bind(&v.files_json)
        .bind(to_unix_millis(v.first_used_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            return tx.commit().await.map_err(backend);
        }
        let entry = LogEntry::policy_version(&v.version, &v.files_json, v.first_used_at);
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>> {
        let row = sqlx::query(
            "SELECT version, files_json, first_used_at_ms FROM policy_versions WHERE version = $1",
        )
        .bind(version)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(PolicyVersion {
                version: r.try_get(0).map_err(backend)?,
                files_json: r.try_get(1).map_err(backend)?,
                first_used_at: from_unix_millis(r.try_get(2).map_err(backend)?),
            })
        })
        .transpose()
    }

    async fn create_key(&self, k: &ApiKey) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, name, role, secret_hash, created_at_ms, revoked_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.id)
        .bind(&k.name)
        .bind(k.role.as_str())
        .bind(&k.secret_hash)
        .bind(to_unix_millis(k.created_at))
        .bind(k.revoked_at.map(to_unix_millis))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        let entry = LogEntry::api_key(&k.id, KeyChange::Created, k.role, k.created_at);
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_key(&self, id: &str) -> StoreResult<Option<ApiKey>> {
        sqlx::query(
            "SELECT id, name, role, secret_hash, created_at_ms, revoked_at_ms FROM api_keys WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?
        .as_ref()
        .map(key_from_row)
        .transpose()
    }

    async fn list_keys(&self) -> StoreResult<Vec<ApiKey>> {
        let rows = sqlx::query(
            "SELECT id, name, role, secret_hash, created_at_ms, revoked_at_ms FROM api_keys ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(backend)?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, id: &str, at: OffsetDateTime) -> StoreResult<bool> {
        let at = from_unix_millis(to_unix_millis(at));
        let mut tx = self.logged_tx().await?;
        let revoked: Option<String> = sqlx::query_scalar(
            "UPDATE api_keys SET revoked_at_ms = $2 WHERE id = $1 AND revoked_at_ms IS NULL RETURNING role",
        )
        .bind(id)
        .bind(to_unix_millis(at))
        .fetch_optional(&mut *tx)
        .await
        .map_err(backend)?;
        match revoked {
            Some(role) => {
                let role = Role::parse(&role)
                    .ok_or_else(|| StoreError::Corrupt(format!("key {id} has role {role:?}")))?;
                log::append(
                    &mut tx,
                    &LogEntry::api_key(id, KeyChange::Revoked, role, at),
                )
                .await?;
                self.commit_logged(tx).await?;
                Ok(true)
            }
            // Already revoked (the first time stands) or no such key.
            None => {
                drop(tx);
                Ok(self.get_key(id).await?.is_some())
            }
        }
    }

    async fn issue_token(&self, t: &IssuedToken) -> StoreResult<IssuedToken> {
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO approval_tokens (decision_id, jti, kid, token, expires_at_ms, created_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (decision_id) DO NOTHING",
        )
        .bind(&t.decision_id)
        .bind(&t.jti)
        .bind(&t.kid)
        .bind(&t.token)
        .bind(to_unix_millis(t.expires_at))
        .bind(to_unix_millis(t.created_at))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            drop(tx);
            return self
                .get_token(&t.decision_id)
                .await?
                .ok_or_else(|| StoreError::Corrupt("token vanished".into()));
        }
        let entry =
            LogEntry::token_issued(&t.decision_id, &t.jti, &t.kid, t.expires_at, t.created_at);
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await?;
        Ok(t.clone())
    }

    async fn get_token(&self, decision_id: &str) -> StoreResult<Option<IssuedToken>> {
        let row = sqlx::query(
            "SELECT decision_id, jti, kid, token, expires_at_ms, created_at_ms FROM approval_tokens WHERE decision_id = $1",
        )
        .bind(decision_id)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        row.map(|r| {
            Ok(IssuedToken {
                decision_id: r.try_get(0).map_err(backend)?,
                jti: r.try_get(1).map_err(backend)?,
                kid: r.try_get(2).map_err(backend)?,
                token: r.try_get(3).map_err(backend)?,
                expires_at: from_unix_millis(r.try_get(4).map_err(backend)?),
                created_at: from_unix_millis(r.try_get(5).map_err(backend)?),
            })
        })
        .transpose()
    }

    async fn redeem_token(&self, r: &Redemption) -> StoreResult<u64> {
        let at = from_unix_millis(to_unix_millis(r.at));
        // Under the log lock, so the check and the insert cannot interleave
        // with another replica's redemption of the same token.
        let mut tx = self.logged_tx().await?;
        let used: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM token_redemptions WHERE jti = $1")
                .bind(&r.jti)
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?;
        if used.is_some() {
            return Err(StoreError::AlreadyRedeemed);
        }
        let entry = LogEntry::token_redeemed(&r.decision_id, &r.jti, &r.redeemed_by, at);
        let index = log::append(&mut tx, &entry).await?;
        sqlx::query(
            "INSERT INTO token_redemptions (jti, decision_id, redeemed_by, redeemed_at_ms, log_index)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(&r.jti)
        .bind(&r.decision_id)
        .bind(&r.redeemed_by)
        .bind(to_unix_millis(at))
        .bind(index as i64)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        self.commit_logged(tx).await?;
        Ok(index)
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
            &entry,
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
            &entry,
        )
        .await
    }

    async fn flag_decision(
        &self,
        decision_id: &str,
        reason: &str,
        at: OffsetDateTime,
    ) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        let updated = sqlx::query("UPDATE decisions SET flag_reason = $2 WHERE id = $1")
            .bind(decision_id)
            .bind(reason)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        log::append(&mut tx, &LogEntry::flag(decision_id, reason, at)).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn list_executions(&self, decision_id: &str) -> StoreResult<Vec<ExecutionReceipt>> {
        self.bodies(
            "SELECT body FROM executions WHERE decision_id = $1 ORDER BY id",
            decision_id,
        )
        .await
    }

    async fn list_outcomes(&self, decision_id: &str) -> StoreResult<Vec<OutcomeRecord>> {
        self.bodies(
            "SELECT body FROM outcomes WHERE decision_id = $1 ORDER BY id",
            decision_id,
        )
        .await
    }

    async fn retire_token_key(
        &self,
        kid: &str,
        jwk_json: &str,
        at: OffsetDateTime,
    ) -> StoreResult<bool> {
        let at = from_unix_millis(to_unix_millis(at));
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query("INSERT INTO token_keys (kid, jwk, retired_at_ms) VALUES ($1, $2, $3) ON CONFLICT (kid) DO NOTHING")
            .bind(kid)
            .bind(jwk_json)
            .bind(to_unix_millis(at))
            .execute(&mut *tx)
            .await
            .map_err(backend)?
            .rows_affected();
        if inserted == 0 {
            // Retired before: the transaction rolls back as it is dropped.
            return Ok(false);
        }
        log::append(&mut tx, &LogEntry::token_key_retired(kid, at)).await?;
        self.commit_logged(tx).await.map(|_| true)
    }

    async fn retired_token_keys_in_use(&self, now: OffsetDateTime) -> StoreResult<Vec<String>> {
        sqlx::query_scalar(
            "SELECT k.jwk FROM token_keys k WHERE EXISTS
               (SELECT 1 FROM approval_tokens t WHERE t.kid = k.kid AND t.expires_at_ms > $1)
             ORDER BY k.kid",
        )
        .bind(to_unix_millis(now))
        .fetch_all(&self.pool)
        .await
        .map_err(backend)
    }

    fn log_verifier_key(&self) -> &str {
        self.signer.verifier_key()
    }

    async fn log_size(&self) -> StoreResult<u64> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        log::size(&mut conn).await
    }

    async fn latest_checkpoint(&self) -> StoreResult<Option<String>> {
        sqlx::query_scalar("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)
    }

    async fn read_log_hashes(&self, indexes: Vec<u64>) -> StoreResult<HashMap<u64, Hash>> {
        let mut conn = self.pool.acquire().await.map_err(backend)?;
        log::read_hashes(&mut conn, &indexes).await
    }

    async fn log_entries_for(&self, ref_id: &str) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows = sqlx::query("SELECT idx, leaf FROM log_entries WHERE ref_id = $1 ORDER BY idx")
            .bind(ref_id)
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let idx: i64 = r.try_get(0).map_err(backend)?;
                Ok((idx as u64, r.try_get(1).map_err(backend)?))
            })
            .collect()
    }

    async fn log_leaves(&self, from: u64, limit: u32) -> StoreResult<Vec<(u64, Vec<u8>)>> {
        let rows =
            sqlx::query("SELECT idx, leaf FROM log_entries WHERE idx >= $1 ORDER BY idx LIMIT $2")
                .bind(from as i64)
                .bind(i64::from(limit))
                .fetch_all(&self.pool)
                .await
                .map_err(backend)?;
        rows.iter()
            .map(|r| {
                let idx: i64 = r.try_get(0).map_err(backend)?;
                Ok((idx as u64, r.try_get(1).map_err(backend)?))
            })
            .collect()
    }
}

#[cfg(any(test, feature = "testing"))]
pub mod testing;
