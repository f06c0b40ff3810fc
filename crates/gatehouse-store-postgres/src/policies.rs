//! Every policy version ever used, for exact replay.

use async_trait::async_trait;
use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{policy_version_from_row, POLICY_VERSION_COLUMNS};
use gatehouse_store::{PolicyStore, PolicyVersion, StoreResult};

use crate::rows::{backend, map_one};
use crate::{log, PostgresStore};

#[async_trait]
impl PolicyStore for PostgresStore {
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
        let entry = LogEntry::policy_version(
            &v.version,
            &v.files_json,
            v.policy_hashes.clone(),
            v.first_used_at,
        );
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>> {
        let sql =
            format!("SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE version = $1");
        let row = sqlx::query(&sql)
            .bind(version)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, policy_version_from_row)
    }
}
