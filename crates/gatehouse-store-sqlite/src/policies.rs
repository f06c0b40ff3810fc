//! Every policy version ever used, for exact replay.

use async_trait::async_trait;
use gatehouse_core::decision::to_unix_millis;
use gatehouse_log::entry::LogEntry;
use gatehouse_store::sql::{policy_version_from_row, POLICY_VERSION_COLUMNS};
use gatehouse_store::{PolicyStore, PolicyVersion, StoreResult};
use rusqlite::params;

use crate::rows::{backend, query_one};
use crate::{log, SqliteStore};

#[async_trait]
impl PolicyStore for SqliteStore {
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
                    let entry = LogEntry::policy_version(
                        &v.version,
                        &v.files_json,
                        v.policy_hashes.clone(),
                        v.first_used_at,
                    );
                    log::append(conn, &entry)?;
                }
                Ok(())
            })
            .await
    }

    async fn get_policy_version(&self, version: &str) -> StoreResult<Option<PolicyVersion>> {
        let version = version.to_string();
        self.read(move |c| {
            let sql =
                format!("SELECT {POLICY_VERSION_COLUMNS} FROM policy_versions WHERE version = ?1");
            query_one(c, &sql, [version], policy_version_from_row)
        })
        .await
    }
}
