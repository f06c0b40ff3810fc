//! Private hooks: stored, listed, revoked once, and logged each time.

use std::sync::Arc;

use gatehouse_log::entry::{KeyChange, LogEntry, LogEvent};

use crate::hooks::HookRecord;
use crate::prelude::*;
use crate::StoreError;

/// The newest log entry, parsed.
async fn last_entry(store: &Arc<dyn Store>) -> LogEntry {
    let size = store.log_size().await.unwrap();
    let leaves = store.log_leaves(size - 1, 1).await.unwrap();
    LogEntry::parse(&leaves[0].1).unwrap()
}

pub async fn hooks_are_scoped_revoked_once_and_logged(store: Arc<dyn Store>) {
    let hook = HookRecord {
        id: gatehouse_core::ids::hook_id(),
        name: "n8n-discounts".into(),
        workflow: "billing_discount_gate".into(),
        actions: vec!["apply_discount".into(), "issue_credit".into()],
        secret: "ghh_secret".into(),
        created_by: "cli".into(),
        created_at_ms: 1_700_000_000_000,
        revoked_at_ms: None,
    };
    store.create_hook(&hook).await.unwrap();
    assert_eq!(store.get_hook(&hook.id).await.unwrap(), Some(hook.clone()));
    assert!(store.get_hook("hook_missing").await.unwrap().is_none());
    let logged = last_entry(&store).await;
    assert_eq!(logged.id, hook.id);
    assert_eq!(
        logged.event,
        LogEvent::HookEvent {
            event: KeyChange::Created,
            name: hook.name.clone(),
            workflow: hook.workflow.clone(),
            actions: hook.actions.clone(),
        },
        "a hook's creation is logged with its scope"
    );
    assert!(
        !String::from_utf8_lossy(
            &store
                .log_leaves(logged_index(&store).await, 1)
                .await
                .unwrap()[0]
                .1
        )
        .contains("ghh_secret"),
        "the secret is never logged"
    );

    // Names are unique: a second hook of the same name is refused.
    let twin = HookRecord {
        id: gatehouse_core::ids::hook_id(),
        ..hook.clone()
    };
    assert!(matches!(
        store.create_hook(&twin).await,
        Err(StoreError::Duplicate)
    ));
    let other = HookRecord {
        id: gatehouse_core::ids::hook_id(),
        name: "zapier-credits".into(),
        created_at_ms: hook.created_at_ms + 1,
        ..hook.clone()
    };
    store.create_hook(&other).await.unwrap();
    let listed: Vec<String> = store
        .list_hooks()
        .await
        .unwrap()
        .into_iter()
        .map(|h| h.id)
        .filter(|id| *id == hook.id || *id == other.id)
        .collect();
    assert_eq!(
        listed,
        vec![hook.id.clone(), other.id.clone()],
        "oldest first"
    );

    let size = store.log_size().await.unwrap();
    assert!(store
        .revoke_hook(&hook.id, 1_700_000_001_000)
        .await
        .unwrap());
    assert_eq!(
        store
            .get_hook(&hook.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms,
        Some(1_700_000_001_000)
    );
    let revoked = last_entry(&store).await;
    assert!(matches!(
        revoked.event,
        LogEvent::HookEvent {
            event: KeyChange::Revoked,
            ..
        }
    ));
    assert_eq!(store.log_size().await.unwrap(), size + 1);
    // Revoking again keeps the first time and logs nothing.
    assert!(store
        .revoke_hook(&hook.id, 1_700_000_002_000)
        .await
        .unwrap());
    assert_eq!(
        store
            .get_hook(&hook.id)
            .await
            .unwrap()
            .unwrap()
            .revoked_at_ms,
        Some(1_700_000_001_000)
    );
    assert_eq!(store.log_size().await.unwrap(), size + 1);
    assert!(!store.revoke_hook("hook_missing", 1).await.unwrap());
    assert!(store
        .get_hook(&other.id)
        .await
        .unwrap()
        .unwrap()
        .revoked_at_ms
        .is_none());
}

async fn logged_index(store: &Arc<dyn Store>) -> u64 {
    store.log_size().await.unwrap() - 1
}
