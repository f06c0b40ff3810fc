//! The policy set in force, and every earlier version, for replay.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use gatehouse_policy::{Engine, EngineOptions, PolicyFile};
use gatehouse_store::{PolicyVersion, Store};
use time::OffsetDateTime;

use crate::error::AppError;

pub struct PolicyRegistry {
    current: Arc<Engine>,
    options: EngineOptions,
    earlier: Mutex<HashMap<String, Arc<Engine>>>,
}

impl PolicyRegistry {
    pub fn new(current: Engine, options: EngineOptions) -> Self {
        PolicyRegistry {
            current: Arc::new(current),
            options,
            earlier: Mutex::new(HashMap::new()),
        }
    }

    pub fn current(&self) -> &Arc<Engine> {
        &self.current
    }

    /// Records the current version so a later replay can load it.
    pub async fn persist_current(
        &self,
        store: &dyn Store,
        now: OffsetDateTime,
    ) -> Result<(), AppError> {
        let files_json = serde_json::to_string(self.current.files())
            .map_err(|e| AppError::Internal(e.to_string()))?;
        store
            .save_policy_version(&PolicyVersion {
                version: self.current.version().to_string(),
                files_json,
                // Each policy's text is logged by hash, so a packet's
                // policy texts can be checked against the log.
                policy_hashes: self
                    .current
                    .policy_texts()
                    .map(|(id, text)| (id.to_string(), gatehouse_log::entry::text_hash(text)))
                    .collect(),
                first_used_at: gatehouse_core::decision::truncate_to_millis(now),
            })
            .await?;
        Ok(())
    }

    /// The engine for a stored version, compiled once and cached.
    pub async fn version(&self, store: &dyn Store, version: &str) -> Result<Arc<Engine>, AppError> {
        if self.current.version() == version {
            return Ok(self.current.clone());
        }
        if let Some(engine) = self
            .earlier
            .lock()
            .ok()
            .and_then(|m| m.get(version).cloned())
        {
            return Ok(engine);
        }
        let stored = store
            .get_policy_version(version)
            .await?
            .ok_or(AppError::NotFound("policy version"))?;
        let files: Vec<PolicyFile> = serde_json::from_str(&stored.files_json)
            .map_err(|e| AppError::Internal(format!("stored policy version {version}: {e}")))?;
        let engine =
            Arc::new(Engine::compile(files, self.options).map_err(|e| {
                AppError::Internal(format!("stored policy version {version}: {e}"))
            })?);
        if let Ok(mut m) = self.earlier.lock() {
            m.insert(version.to_string(), engine.clone());
        }
        Ok(engine)
    }
}
