//! Task events: what the caller reports happened around an action, so
//! reviewers and auditors see the before and after.

use gatehouse_core::{ids, TaskEvent};
use gatehouse_store::Role;
use serde_json::Value;

use crate::error::{AppError, AppResult};
use crate::{now, App, Caller};

const MAX_KIND: usize = 100;
const MAX_MESSAGE: usize = 4000;

/// A task event as reported, before the server gives it an id and a time.
pub struct NewTaskEvent {
    pub task_id: String,
    pub kind: String,
    pub message: Option<String>,
    pub decision_id: Option<String>,
    pub data: Value,
}

impl App {
    pub async fn add_event(&self, caller: &Caller, mut new: NewTaskEvent) -> AppResult<TaskEvent> {
        caller.require(&[Role::Agent, Role::Admin], "record task events")?;
        new.task_id = task_id(&new.task_id)?;
        if new.kind.trim().is_empty() || new.kind.chars().count() > MAX_KIND {
            return Err(AppError::Validation(format!(
                "kind must be 1 to {MAX_KIND} characters"
            )));
        }
        if new
            .message
            .as_ref()
            .is_some_and(|m| m.chars().count() > MAX_MESSAGE)
        {
            return Err(AppError::Validation(format!(
                "message must be at most {MAX_MESSAGE} characters"
            )));
        }
        if let Some(decision_id) = &new.decision_id {
            let d = self.read(caller, decision_id).await?;
            if d.request.task_id.as_deref() != Some(new.task_id.as_str()) {
                return Err(AppError::Validation(format!(
                    "decision {decision_id} belongs to another task"
                )));
            }
        }
        let event = TaskEvent {
            id: ids::event_id(),
            task_id: new.task_id,
            decision_id: new.decision_id,
            kind: new.kind,
            message: new.message,
            data: new.data,
            created_by: caller.key_id.clone(),
            created_at: now(),
        };
        self.store.add_event(&event).await?;
        Ok(event)
    }

    /// The task's events the caller may read, in order.
    pub async fn list_events(&self, caller: &Caller, task_id: &str) -> AppResult<Vec<TaskEvent>> {
        let task_id = self::task_id(task_id)?;
        let events = self.store.list_events(&task_id).await?;
        Ok(events
            .into_iter()
            .filter(|e| caller.may_read(&e.created_by))
            .collect())
    }
}

/// A task id is a name: not blank, at most 200 characters, no control
/// characters (as when a request names it); kept without surrounding
/// whitespace, as requests keep it.
fn task_id(raw: &str) -> AppResult<String> {
    gatehouse_core::error::name("task_id", raw.to_string())
        .map_err(|e| AppError::Validation(format!("{}: {}", e.field, e.message)))
}
