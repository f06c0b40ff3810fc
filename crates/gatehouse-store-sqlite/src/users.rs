//! People and their groups.

use async_trait::async_trait;
use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_log::entry::{LogEntry, UserChange};
use gatehouse_store::sql::{user_from_row, users_sql, Dialect};
use gatehouse_store::{StoreError, StoreResult, User, UserStore, UserUpdate};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;

use crate::rows::{backend, query_all, query_one};
use crate::{log, SqliteStore};

fn find(conn: &Connection, name: &str) -> StoreResult<Option<User>> {
    query_one(
        conn,
        &users_sql(Dialect::Sqlite, true),
        [name],
        user_from_row,
    )
}

fn put_groups(conn: &Connection, name: &str, groups: &[String]) -> StoreResult<()> {
    conn.execute("DELETE FROM user_groups WHERE user_name = ?1", [name])
        .map_err(backend)?;
    for g in groups {
        conn.execute(
            "INSERT INTO user_groups (user_name, group_name) VALUES (?1, ?2)",
            params![name, g],
        )
        .map_err(backend)?;
    }
    Ok(())
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn create_user(&self, user: &User) -> StoreResult<()> {
        let u = user.clone();
        self.writer
            .run(move |conn| {
                let inserted = conn.execute(
                    "INSERT INTO users (name, role, email, password_hash, created_at_ms, disabled_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (name) DO NOTHING",
                    params![
                        u.name,
                        u.role.as_str(),
                        u.email,
                        u.password_hash,
                        to_unix_millis(u.created_at),
                        u.disabled_at.map(to_unix_millis)
                    ],
                )
                .map_err(backend)?;
                if inserted == 0 {
                    return Err(StoreError::Duplicate);
                }
                put_groups(conn, &u.name, &u.groups)?;
                let entry = LogEntry::user(
                    &u.name,
                    UserChange::Created,
                    u.role,
                    Some(&u.groups),
                    u.created_at,
                );
                log::append(conn, &entry)?;
                Ok(())
            })
            .await
    }

    async fn get_user(&self, name: &str) -> StoreResult<Option<User>> {
        let name = name.to_string();
        self.read(move |c| find(c, &name)).await
    }

    async fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| query_all(c, &users_sql(Dialect::Sqlite, false), [], user_from_row))
            .await
    }

    async fn update_user(
        &self,
        name: &str,
        update: &UserUpdate,
        at: OffsetDateTime,
    ) -> StoreResult<User> {
        let name = name.to_string();
        let update = update.clone();
        let at = from_unix_millis(to_unix_millis(at));
        self.writer
            .run(move |conn| {
                let user = find(conn, &name)?.ok_or(StoreError::NotFound)?;
                let change = match &update {
                    UserUpdate::Disable if user.disabled_at.is_some() => return Ok(user),
                    UserUpdate::Disable => {
                        conn.execute(
                            "UPDATE users SET disabled_at_ms = ?2 WHERE name = ?1",
                            params![name, to_unix_millis(at)],
                        )
                        .map_err(backend)?;
                        UserChange::Disabled
                    }
                    UserUpdate::Groups(groups) => {
                        put_groups(conn, &name, groups)?;
                        UserChange::GroupsSet
                    }
                    UserUpdate::Password(hash) => {
                        conn.execute(
                            "UPDATE users SET password_hash = ?2 WHERE name = ?1",
                            params![name, hash],
                        )
                        .map_err(backend)?;
                        UserChange::PasswordSet
                    }
                };
                let groups = match &update {
                    UserUpdate::Groups(g) => Some(g.as_slice()),
                    _ => None,
                };
                log::append(conn, &LogEntry::user(&name, change, user.role, groups, at))?;
                find(conn, &name)?.ok_or(StoreError::NotFound)
            })
            .await
    }

    async fn group_exists(&self, group: &str) -> StoreResult<bool> {
        let group = group.to_string();
        self.read(move |c| {
            c.query_row(
                "SELECT 1 FROM user_groups g JOIN users u ON u.name = g.user_name
                 WHERE g.group_name = ?1 AND u.disabled_at_ms IS NULL LIMIT 1",
                [group],
                |_| Ok(()),
            )
            .optional()
            .map(|found| found.is_some())
            .map_err(backend)
        })
        .await
    }

    async fn set_identity(
        &self,
        provider: &str,
        subject: &str,
        user: Option<&str>,
    ) -> StoreResult<()> {
        let (provider, subject, user) = (
            provider.to_string(),
            subject.to_string(),
            user.map(str::to_string),
        );
        self.writer
            .run(move |tx| {
                tx.execute(
                    "DELETE FROM user_identities WHERE provider = ?1 AND subject = ?2",
                    [&provider, &subject],
                )
                .map_err(backend)?;
                if let Some(user) = user {
                    tx.execute(
                        "INSERT INTO user_identities (provider, subject, user_name) VALUES (?1, ?2, ?3)",
                        [&provider, &subject, &user],
                    )
                    .map_err(backend)?;
                }
                Ok(())
            })
            .await
    }

    async fn user_by_identity(&self, provider: &str, subject: &str) -> StoreResult<Option<String>> {
        let (provider, subject) = (provider.to_string(), subject.to_string());
        self.read(move |c| {
            c.query_row(
                "SELECT user_name FROM user_identities WHERE provider = ?1 AND subject = ?2",
                [provider, subject],
                |r| r.get(0),
            )
            .optional()
            .map_err(backend)
        })
        .await
    }
}
