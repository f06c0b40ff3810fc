//! People and their groups.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_log::entry::{LogEntry, UserChange};
use gatehouse_store::sql::{user_from_row, users_sql, Dialect};
use gatehouse_store::{StoreError, StoreResult, User, UserStore, UserUpdate};
use sqlx::{Postgres, Transaction};
use time::OffsetDateTime;

use crate::rows::{backend, map_all, map_one};
use crate::{log, PostgresStore};

async fn find(tx: &mut Transaction<'static, Postgres>, name: &str) -> StoreResult<Option<User>> {
    let row = sqlx::query(&users_sql(Dialect::Postgres, true))
        .bind(name)
        .fetch_optional(&mut **tx)
        .await
        .map_err(backend)?;
    map_one(row, user_from_row)
}

async fn put_groups(
    tx: &mut Transaction<'static, Postgres>,
    name: &str,
    groups: &[String],
) -> StoreResult<()> {
    sqlx::query("DELETE FROM user_groups WHERE user_name = $1")
        .bind(name)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    sqlx::query("INSERT INTO user_groups (user_name, group_name) SELECT $1, unnest($2::text[])")
        .bind(name)
        .bind(groups)
        .execute(&mut **tx)
        .await
        .map_err(backend)?;
    Ok(())
}

#[async_trait]
impl UserStore for PostgresStore {
    async fn create_user(&self, u: &User) -> StoreResult<()> {
        let mut tx = self.logged_tx().await?;
        let inserted = sqlx::query(
            "INSERT INTO users (name, role, email, password_hash, created_at_ms, disabled_at_ms)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&u.name)
        .bind(u.role.as_str())
        .bind(&u.email)
        .bind(&u.password_hash)
        .bind(to_unix_millis(u.created_at))
        .bind(u.disabled_at.map(to_unix_millis))
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        if inserted.rows_affected() == 0 {
            return Err(StoreError::Duplicate);
        }
        put_groups(&mut tx, &u.name, &u.groups).await?;
        let entry = LogEntry::user(
            &u.name,
            UserChange::Created,
            u.role,
            Some(&u.groups),
            u.created_at,
        );
        log::append(&mut tx, &entry).await?;
        self.commit_logged(tx).await.map(drop)
    }

    async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        let row = sqlx::query(&users_sql(Dialect::Postgres, true))
            .bind(name)
            .fetch_optional(&self.pool)
            .await
            .map_err(backend)?;
        map_one(row, user_from_row)
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        let rows = sqlx::query(&users_sql(Dialect::Postgres, false))
            .fetch_all(&self.pool)
            .await
            .map_err(backend)?;
        map_all(&rows, user_from_row)
    }

    async fn update_user(
        &self,
        name: &str,
        update: &UserUpdate,
        at: OffsetDateTime,
    ) -> StoreResult<User> {
        let at = from_unix_millis(to_unix_millis(at));
        // Under the log lock, so two changes to one user are applied and
        // logged in the same order.
        let mut tx = self.logged_tx().await?;
        let user = find(&mut tx, name).await?.ok_or(StoreError::NotFound)?;
        let change = match update {
            UserUpdate::Disable if user.disabled_at.is_some() => return Ok(user),
            UserUpdate::Disable => {
                sqlx::query("UPDATE users SET disabled_at_ms = $2 WHERE name = $1")
                    .bind(name)
                    .bind(to_unix_millis(at))
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                UserChange::Disabled
            }
            UserUpdate::Groups(groups) => {
                put_groups(&mut tx, name, groups).await?;
                UserChange::GroupsSet
            }
            UserUpdate::Password(hash) => {
                sqlx::query("UPDATE users SET password_hash = $2 WHERE name = $1")
                    .bind(name)
                    .bind(hash)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
                UserChange::PasswordSet
            }
        };
        let groups = match update {
            UserUpdate::Groups(g) => Some(g.as_slice()),
            _ => None,
        };
        log::append(
            &mut tx,
            &LogEntry::user(name, change, user.role, groups, at),
        )
        .await?;
        let updated = find(&mut tx, name).await?.ok_or(StoreError::NotFound)?;
        self.commit_logged(tx).await?;
        Ok(updated)
    }

    async fn group_exists(&self, group: &str) -> StoreResult<bool> {
        let found: Option<i32> = sqlx::query_scalar(
            "SELECT 1 FROM user_groups g JOIN users u ON u.name = g.user_name
             WHERE g.group_name = $1 AND u.disabled_at_ms IS NULL LIMIT 1",
        )
        .bind(group)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)?;
        Ok(found.is_some())
    }

    async fn set_identity(
        &self,
        provider: &str,
        subject: &str,
        user: Option<&str>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await.map_err(backend)?;
        sqlx::query("DELETE FROM user_identities WHERE provider = $1 AND subject = $2")
            .bind(provider)
            .bind(subject)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        if let Some(user) = user {
            sqlx::query(
                "INSERT INTO user_identities (provider, subject, user_name) VALUES ($1, $2, $3)",
            )
            .bind(provider)
            .bind(subject)
            .bind(user)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)
    }

    async fn user_by_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>> {
        sqlx::query_scalar(
            "SELECT user_name FROM user_identities WHERE provider = $1 AND subject = $2",
        )
        .bind(provider)
        .bind(subject)
        .fetch_optional(&self.pool)
        .await
        .map_err(backend)
    }
}
