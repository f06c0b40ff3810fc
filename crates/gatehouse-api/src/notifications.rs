//! Webhook subscriptions and deliveries: bodies, views and the query.

use gatehouse_store::outbox::{Delivery, DeliveryAttempt, DeliveryStatus, WebhookRecord};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

fn at(ms: i64) -> String {
    gatehouse_core::decision::rfc3339(gatehouse_core::decision::from_unix_millis(ms))
}

/// `POST /api/webhooks`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookBody {
    /// An absolute http(s) URL without credentials.
    #[schema(example = "https://hooks.example.com/gatehouse")]
    pub url: String,
    /// Event types: `decision.created`, `decision.pending_review`,
    /// `decision.escalated`, `decision.resolved`, `token.redeemed`,
    /// `execution.refused`, `outcome.recorded`.
    pub events: Vec<String>,
}

/// A subscription made through the API (never its secret after creation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookView {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    pub created_at: String,
}

impl From<&WebhookRecord> for WebhookView {
    fn from(w: &WebhookRecord) -> Self {
        WebhookView {
            id: w.id.clone(),
            url: w.url.clone(),
            events: w.events.clone(),
            created_at: at(w.created_at_ms),
        }
    }
}

/// `201` of `POST /api/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookCreated {
    pub webhook: WebhookView,
    /// The Standard Webhooks secret (`whsec_…`) receivers verify
    /// signatures with; shown only once.
    pub secret: String,
}

/// `200` of `GET /api/webhooks`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WebhookList {
    pub items: Vec<WebhookView>,
}

/// `pending` (not yet delivered; retrying), `delivered` or `dead` (given
/// up after the last attempt or the maximum age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    Pending,
    Delivered,
    Dead,
}

impl From<DeliveryStatus> for DeliveryState {
    fn from(s: DeliveryStatus) -> Self {
        match s {
            DeliveryStatus::Pending => DeliveryState::Pending,
            DeliveryStatus::Delivered => DeliveryState::Delivered,
            DeliveryStatus::Dead => DeliveryState::Dead,
        }
    }
}

impl From<DeliveryState> for DeliveryStatus {
    fn from(s: DeliveryState) -> Self {
        match s {
            DeliveryState::Pending => DeliveryStatus::Pending,
            DeliveryState::Delivered => DeliveryStatus::Delivered,
            DeliveryState::Dead => DeliveryStatus::Dead,
        }
    }
}

/// A notification owed to a webhook, callback, Slack channel or mailbox.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryView {
    /// The same for every attempt (the `webhook-id` header).
    pub id: String,
    pub decision_id: String,
    /// The event type, e.g. `decision.resolved`.
    pub event: String,
    /// `webhook`, `callback`, `slack` or `email`.
    pub channel: String,
    /// The subscription, callback URL, Slack channel or address.
    pub target: String,
    pub status: DeliveryState,
    pub attempts: u32,
    pub created_at: String,
    /// When the next attempt is due, while pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_attempt_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<String>,
}

impl From<&Delivery> for DeliveryView {
    fn from(d: &Delivery) -> Self {
        DeliveryView {
            id: d.new.id.clone(),
            decision_id: d.new.decision_id.clone(),
            event: d.new.event_type.clone(),
            channel: d.new.channel.clone(),
            target: d.new.target.clone(),
            status: d.status.into(),
            attempts: d.attempts,
            created_at: at(d.new.created_at_ms),
            next_attempt_at: (d.status == DeliveryStatus::Pending)
                .then(|| at(d.next_attempt_at_ms)),
            last_attempt_at: d.last_attempt_at_ms.map(at),
            last_status_code: d.last_status_code,
            last_error: d.last_error.clone(),
            delivered_at: d.delivered_at_ms.map(at),
        }
    }
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AttemptView {
    pub attempt: u32,
    pub at: String,
    pub duration_ms: i64,
    /// The receiver's HTTP status (or SMTP reply), if it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl From<&DeliveryAttempt> for AttemptView {
    fn from(a: &DeliveryAttempt) -> Self {
        AttemptView {
            attempt: a.attempt,
            at: at(a.at_ms),
            duration_ms: a.duration_ms,
            status_code: a.status_code,
            error: a.error.clone(),
        }
    }
}

/// `200` of `GET /api/deliveries/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryDetail {
    pub delivery: DeliveryView,
    pub attempts: Vec<AttemptView>,
}

/// `200` of `GET /api/deliveries`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryList {
    pub items: Vec<DeliveryView>,
    /// Pass as `before` for the next page; absent on the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_before: Option<String>,
}

/// `GET /api/deliveries`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    pub status: Option<DeliveryState>,
    pub decision_id: Option<String>,
    /// Only deliveries older than this delivery id (the previous page's
    /// `next_before`).
    pub before: Option<String>,
    /// 1 to 500; 50 by default.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<u32>,
}
