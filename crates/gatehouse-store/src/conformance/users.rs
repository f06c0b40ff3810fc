//! People, their groups, and keys that belong to them.

use std::sync::Arc;

use gatehouse_core::{ids, Role};
use gatehouse_log::entry::{LogEntry, LogEvent, UserChange};

use super::now;
use crate::{ApiKey, Store, StoreError, User, UserUpdate};

pub fn sample_user(name: &str, groups: &[&str]) -> User {
    User {
        name: name.to_string(),
        role: Role::Reviewer,
        email: Some(format!("{name}@example.com")),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        created_at: now(),
        disabled_at: None,
    }
}

/// The `user_event` entries about `name`, in log order.
async fn user_events(store: &Arc<dyn Store>, name: &str) -> Vec<(UserChange, Option<Vec<String>>)> {
    store
        .log_entries_for(name)
        .await
        .unwrap()
        .iter()
        .filter_map(|(_, bytes)| match LogEntry::parse(bytes).unwrap().event {
            LogEvent::UserEvent { event, groups, .. } => Some((event, groups)),
            _ => None,
        })
        .collect()
}

pub async fn users_groups_and_key_owners(store: Arc<dyn Store>) {
    let name = format!("ana-{}", ids::key_id());
    let ana = sample_user(&name, &["finance", "legal"]);
    store.create_user(&ana).await.unwrap();
    assert_eq!(store.get_user(&name).await.unwrap(), Some(ana.clone()));
    assert!(store.list_users().await.unwrap().contains(&ana));
    assert!(
        matches!(store.create_user(&ana).await, Err(StoreError::Duplicate)),
        "a second user with the same name must be refused"
    );
    assert!(store.group_exists("finance").await.unwrap());
    assert!(!store.group_exists("no-such-group").await.unwrap());

    // A user without groups lists with none.
    let bob = sample_user(&format!("bob-{}", ids::key_id()), &[]);
    store.create_user(&bob).await.unwrap();
    assert_eq!(
        store.get_user(&bob.name).await.unwrap().unwrap().groups,
        Vec::<String>::new()
    );

    let at = now();
    let groups = vec!["finance-leads".to_string()];
    let updated = store
        .update_user(&name, &UserUpdate::Groups(groups.clone()), at)
        .await
        .unwrap();
    assert_eq!(updated.groups, groups);
    let updated = store
        .update_user(&name, &UserUpdate::Password("$argon2id$new".into()), at)
        .await
        .unwrap();
    assert_eq!(updated.password_hash, "$argon2id$new");
    let disabled = store
        .update_user(&name, &UserUpdate::Disable, at)
        .await
        .unwrap();
    assert_eq!(disabled.disabled_at, Some(at));
    // Disabling again keeps the first time and logs nothing.
    let again = store
        .update_user(&name, &UserUpdate::Disable, now())
        .await
        .unwrap();
    assert_eq!(again.disabled_at, Some(at));
    // A group whose only member is disabled no longer exists for routing.
    assert!(!store.group_exists("finance-leads").await.unwrap());
    assert!(matches!(
        store
            .update_user("nobody-at-all", &UserUpdate::Disable, at)
            .await,
        Err(StoreError::NotFound)
    ));

    assert_eq!(
        user_events(&store, &name).await,
        vec![
            (
                UserChange::Created,
                Some(vec!["finance".to_string(), "legal".to_string()])
            ),
            (UserChange::GroupsSet, Some(groups)),
            (UserChange::PasswordSet, None),
            (UserChange::Disabled, None),
        ]
    );

    // A key may belong to a person; the link is read back.
    let key = ApiKey {
        id: ids::key_id(),
        name: "ana's laptop".into(),
        role: Role::Reviewer,
        secret_hash: vec![1; 32],
        created_at: now(),
        revoked_at: None,
        minted_by: None,
        user: Some(bob.name.clone()),
    };
    store.create_key(&key).await.unwrap();
    assert_eq!(
        store.get_key(&key.id).await.unwrap().unwrap().user,
        Some(bob.name)
    );
}

pub async fn sessions_are_stored_touched_and_expired(store: Arc<dyn Store>) {
    let u = sample_user(&format!("sid-{}", ids::key_id()), &["finance"]);
    store.create_user(&u).await.unwrap();
    let t0 = now();
    let session = |n: u8, created| crate::Session {
        id_hash: format!("{n:02x}{}", ids::key_id()),
        user: u.name.clone(),
        csrf: "csrf".into(),
        created_at: created,
        last_seen_at: created,
    };
    let fresh = session(1, t0);
    let old = session(2, t0 - time::Duration::hours(13));
    for s in [&fresh, &old] {
        store.create_session(s).await.unwrap();
    }
    assert_eq!(
        store.get_session(&fresh.id_hash).await.unwrap(),
        Some(fresh.clone())
    );
    let later = t0 + time::Duration::minutes(5);
    store.touch_session(&fresh.id_hash, later).await.unwrap();
    assert_eq!(
        store
            .get_session(&fresh.id_hash)
            .await
            .unwrap()
            .unwrap()
            .last_seen_at,
        later
    );
    let removed = store
        .delete_expired_sessions(
            t0 - time::Duration::minutes(30),
            t0 - time::Duration::hours(12),
        )
        .await
        .unwrap();
    assert!(removed >= 1);
    assert!(store.get_session(&old.id_hash).await.unwrap().is_none());
    store.delete_session(&fresh.id_hash).await.unwrap();
    assert!(store.get_session(&fresh.id_hash).await.unwrap().is_none());
}
