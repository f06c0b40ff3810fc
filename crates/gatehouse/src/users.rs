//! `gatehouse users`: people and their groups, written to the database
//! directly (like `gatehouse keys`), with the same checks as the API.

use std::io::BufRead;

use anyhow::{bail, Context, Result};
use gatehouse_app::users::{groups, hash_password, prepare_user, NewUser};
use gatehouse_store::{Role, StoreError, UserUpdate};
use time::OffsetDateTime;

use crate::cli::UsersCommand;
use crate::local::open_store;

/// One line from standard input, without its line ending: a password is
/// never an argument, where other users of the machine could read it.
fn read_password() -> Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    let password = line.trim_end_matches(['\r', '\n']).to_string();
    if password.is_empty() {
        bail!("no password on standard input (pipe it in, e.g. `printf '%s' \"$PASSWORD\" | gatehouse users ...`)");
    }
    Ok(password)
}

fn not_found(name: &str) -> impl FnOnce(StoreError) -> anyhow::Error + '_ {
    move |e| match e {
        StoreError::NotFound => anyhow::anyhow!("no user named {name:?}"),
        other => other.into(),
    }
}

pub async fn run(cmd: UsersCommand) -> Result<()> {
    match cmd {
        UsersCommand::LinkSlack {
            name,
            slack_user_id,
            storage,
        } => {
            gatehouse_app::users::check_slack_user_id(&slack_user_id)
                .map_err(anyhow::Error::msg)?;
            let store = open_store(&storage).await?;
            store
                .get_user(&name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user named {name:?}"))?;
            store
                .set_identity(gatehouse_app::users::SLACK, &slack_user_id, Some(&name))
                .await?;
            println!("Slack user {slack_user_id} is now {name}");
        }
        UsersCommand::Create {
            name,
            groups,
            email,
            slack_user_id,
            role,
            password_stdin: _,
            storage,
        } => {
            if let Some(id) = &slack_user_id {
                gatehouse_app::users::check_slack_user_id(id).map_err(anyhow::Error::msg)?;
            }
            let role = Role::parse(&role).context("unknown role")?;
            let password = read_password()?;
            let user = prepare_user(NewUser {
                name,
                role,
                groups,
                email,
                password,
                slack_user_id: None,
            })?;
            let store = open_store(&storage).await?;
            match store.create_user(&user).await {
                Err(StoreError::Duplicate) => bail!("a user named {:?} exists already", user.name),
                other => other?,
            }
            if let Some(id) = &slack_user_id {
                store
                    .set_identity(gatehouse_app::users::SLACK, id, Some(&user.name))
                    .await?;
            }
            println!(
                "created {} {} in groups [{}]",
                user.role.as_str(),
                user.name,
                user.groups.join(", ")
            );
        }
        UsersCommand::List { storage } => {
            let store = open_store(&storage).await?;
            println!(
                "{:<24} {:<9} {:<9} {:<28} GROUPS",
                "NAME", "ROLE", "STATUS", "EMAIL"
            );
            for u in store.list_users().await? {
                let status = if u.is_active() { "active" } else { "disabled" };
                println!(
                    "{:<24} {:<9} {status:<9} {:<28} {}",
                    u.name,
                    u.role.as_str(),
                    u.email.as_deref().unwrap_or("-"),
                    u.groups.join(",")
                );
            }
        }
        UsersCommand::Disable { name, storage } => {
            let store = open_store(&storage).await?;
            store
                .update_user(&name, &UserUpdate::Disable, OffsetDateTime::now_utc())
                .await
                .map_err(not_found(&name))?;
            println!(
                "disabled {name}; running servers stop accepting their keys within a few seconds"
            );
        }
        UsersCommand::SetGroups {
            name,
            groups: raw,
            storage,
        } => {
            let new = groups(raw)?;
            let store = open_store(&storage).await?;
            let user = store
                .update_user(&name, &UserUpdate::Groups(new), OffsetDateTime::now_utc())
                .await
                .map_err(not_found(&name))?;
            println!("{name} is now in groups [{}]", user.groups.join(", "));
        }
        UsersCommand::SetPassword {
            name,
            password_stdin: _,
            storage,
        } => {
            let hash = hash_password(&read_password()?)?;
            let store = open_store(&storage).await?;
            store
                .update_user(
                    &name,
                    &UserUpdate::Password(hash),
                    OffsetDateTime::now_utc(),
                )
                .await
                .map_err(not_found(&name))?;
            println!("password of {name} changed");
        }
    }
    Ok(())
}
