//! Deliveries and webhook subscriptions, for admins (and auditors, who may
//! read): list, inspect, retry a dead letter, subscribe.

use base64::Engine as _;
use gatehouse_core::{ids, Role};
use gatehouse_store::outbox::{Delivery, DeliveryAttempt, DeliveryQuery, WebhookRecord};
use rand::RngCore;

use crate::error::{AppError, AppResult};
use crate::notice::EVENT_TYPES;
use crate::{now, App, Caller};

/// Deliveries listed at most per page.
pub const MAX_DELIVERY_PAGE: u32 = 500;

/// A new Standard Webhooks secret: `whsec_` and 32 random bytes in base64.
pub fn new_webhook_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(bytes)
    )
}

/// Checks a subscription's event names against the catalogue.
pub fn check_event_types(events: &[String]) -> Result<(), String> {
    if events.len() > 64 {
        return Err("events may name at most 64 entries".into());
    }
    if events.is_empty() {
        return Err(format!(
            "events must name at least one of: {}",
            EVENT_TYPES.join(", ")
        ));
    }
    for e in events {
        if !EVENT_TYPES.contains(&e.as_str()) {
            return Err(format!(
                "unknown event {e:?}; events are: {}",
                EVENT_TYPES.join(", ")
            ));
        }
    }
    Ok(())
}

/// Checks a webhook URL: absolute http(s) with a host, no credentials.
pub fn check_webhook_url(raw: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(raw).map_err(|e| format!("{raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(format!("{raw:?} must be an http or https URL"));
    }
    match url.host() {
        None => return Err(format!("{raw:?} has no host")),
        // The URL standard lets odd characters through in names (`0*`);
        // a name DNS can resolve has letters, digits and hyphens only.
        Some(url::Host::Domain(name)) => {
            let ok = name.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
            if !ok {
                return Err(format!("{raw:?} does not name a valid host"));
            }
        }
        Some(_) => {}
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(format!(
            "{raw:?} carries credentials; receivers verify the signature instead"
        ));
    }
    Ok(url)
}

impl App {
    pub async fn list_deliveries(
        &self,
        caller: &Caller,
        mut query: DeliveryQuery,
    ) -> AppResult<Vec<Delivery>> {
        caller.require(&[Role::Admin, Role::Auditor], "read deliveries")?;
        if query.limit == 0 || query.limit > MAX_DELIVERY_PAGE {
            query.limit = query.limit.clamp(1, MAX_DELIVERY_PAGE);
        }
        Ok(self.store.list_deliveries(&query).await?)
    }

    /// A delivery and its attempts, oldest first.
    pub async fn delivery(
        &self,
        caller: &Caller,
        id: &str,
    ) -> AppResult<(Delivery, Vec<DeliveryAttempt>)> {
        caller.require(&[Role::Admin, Role::Auditor], "read deliveries")?;
        let d = self
            .store
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        let attempts = self.store.delivery_attempts(id).await?;
        Ok((d, attempts))
    }

    /// Makes a pending or dead delivery due now, with a fresh count.
    pub async fn retry_delivery(&self, caller: &Caller, id: &str) -> AppResult<Delivery> {
        caller.require(&[Role::Admin], "retry deliveries")?;
        let d = self
            .store
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))?;
        let at = gatehouse_core::decision::to_unix_millis(now());
        if !self.store.retry_delivery(id, at).await? {
            return Err(AppError::InvalidArgument(format!(
                "delivery {} was {}; only pending and dead deliveries can be retried",
                d.new.id,
                d.status.as_str()
            )));
        }
        self.events.appended();
        self.store
            .get_delivery(id)
            .await?
            .ok_or(AppError::NotFound("delivery"))
    }

    /// Subscribes a URL to events; the answer holds the secret, which is
    /// never shown again.
    pub async fn create_webhook(
        &self,
        caller: &Caller,
        url: &str,
        events: Vec<String>,
    ) -> AppResult<WebhookRecord> {
        caller.require(&[Role::Admin], "manage webhooks")?;
        let url = check_webhook_url(url).map_err(AppError::Validation)?;
        check_event_types(&events).map_err(AppError::Validation)?;
        let mut events = events;
        events.sort_by_key(|e| EVENT_TYPES.iter().position(|t| t == e));
        events.dedup();
        let record = WebhookRecord {
            id: ids::webhook_id(),
            url: url.to_string(),
            secret: new_webhook_secret(),
            events,
            created_by: caller.key_id.clone(),
            created_at_ms: gatehouse_core::decision::to_unix_millis(now()),
        };
        self.store.create_webhook(&record).await?;
        self.webhooks.clear();
        Ok(record)
    }

    /// Subscriptions made through the API (without their secrets' use:
    /// callers show only the id, URL and events).
    pub async fn list_webhooks(&self, caller: &Caller) -> AppResult<Vec<WebhookRecord>> {
        caller.require(&[Role::Admin], "manage webhooks")?;
        Ok(self.store.list_webhooks().await?)
    }

    pub async fn delete_webhook(&self, caller: &Caller, id: &str) -> AppResult<()> {
        caller.require(&[Role::Admin], "manage webhooks")?;
        if !self.store.delete_webhook(id).await? {
            return Err(AppError::NotFound("webhook"));
        }
        self.webhooks.clear();
        Ok(())
    }

    /// The stored subscriptions, read at most once per cache period: the
    /// fan-out asks for every event it considers.
    pub async fn stored_webhooks(&self) -> AppResult<std::sync::Arc<Vec<WebhookRecord>>> {
        if let Some(hooks) = self.webhooks.get("", self.config.key_cache_ttl) {
            return Ok(hooks);
        }
        let hooks = std::sync::Arc::new(self.store.list_webhooks().await?);
        self.webhooks.put("", hooks.clone());
        Ok(hooks)
    }
}
