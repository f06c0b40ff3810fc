//! The outbox: notifications owed to webhooks, callbacks, Slack and email,
//! each delivered at least once.
//!
//! What a notification is about is a log entry, committed in the same
//! transaction as the state change it records; the outbox turns entries
//! into delivery rows, in log order, behind a cursor that moves only in the
//! transaction that stores the rows. So nothing is owed for a change that
//! did not commit, and nothing committed is skipped, across crashes and
//! replicas. Deliveries are operational records, not evidence: they are
//! not log leaves and nothing verifies against them.

use async_trait::async_trait;
use serde::Serialize;

use crate::sql::Columns;
use crate::{StoreError, StoreResult};

/// A delivery the fan-out owes, before its first attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// Stable across attempts: receivers de-duplicate on it (it is the
    /// Standard Webhooks `webhook-id`).
    pub id: String,
    /// The log entry the event comes from.
    pub log_index: u64,
    /// The event's place in the stream (log index and the event's ordinal
    /// within its entry): deliveries to one target about one decision go
    /// out in this order, and it makes the fan-out idempotent.
    pub position: i64,
    pub decision_id: String,
    /// The event catalogue's name, e.g. `decision.pending_review`.
    pub event_type: String,
    /// `webhook`, `callback`, `slack` or `email`.
    pub channel: String,
    /// Where to: a subscription id, a callback URL, a Slack channel id, an
    /// email address.
    pub target: String,
    /// The body to send (JSON), fixed when the event is fanned out.
    pub payload: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Not yet delivered; due at `next_attempt_at_ms`.
    Pending,
    Delivered,
    /// Given up after the last attempt or the maximum age.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> StoreResult<DeliveryStatus> {
        match s {
            "pending" => Ok(DeliveryStatus::Pending),
            "delivered" => Ok(DeliveryStatus::Delivered),
            "dead" => Ok(DeliveryStatus::Dead),
            other => Err(StoreError::Corrupt(format!(
                "unknown delivery status {other:?}"
            ))),
        }
    }
}

/// A delivery and where it stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub new: NewDelivery,
    pub status: DeliveryStatus,
    /// Attempts made (claimed) so far.
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
    /// Age limits count from here: creation, or a manual retry.
    pub age_from_ms: i64,
    pub last_attempt_at_ms: Option<i64>,
    pub last_status_code: Option<u16>,
    pub last_error: Option<String>,
    pub delivered_at_ms: Option<i64>,
}

/// One attempt's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryAttempt {
    pub delivery_id: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub at_ms: i64,
    pub duration_ms: i64,
    /// The receiver's HTTP status (or SMTP reply code), if it answered.
    pub status_code: Option<u16>,
    /// Why the attempt failed, if it did.
    pub error: Option<String>,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryNext {
    Delivered,
    RetryAt(i64),
    Dead,
}

/// Which deliveries to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub decision_id: Option<String>,
    pub status: Option<DeliveryStatus>,
    /// Only deliveries created before this one (keyset paging by id).
    pub before: Option<String>,
    pub limit: u32,
}

/// A webhook subscription made through the admin API (those in the
/// configuration file are not stored).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    /// The Standard Webhooks secret (`whsec_…`); kept server-side, shown
    /// once when created.
    pub secret: String,
    pub events: Vec<String>,
    pub created_by: String,
    pub created_at_ms: i64,
}

/// The outbox's storage.
#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// The next log index the fan-out has not yet turned into deliveries.
    async fn outbox_cursor(&self) -> StoreResult<u64>;

    /// Stores `deliveries` (those already stored, by position, channel and
    /// target, are kept) and moves the cursor from `from` to `to`, in one
    /// transaction; false, storing nothing, if the cursor is no longer at
    /// `from` (another replica fanned these entries out).
    async fn enqueue_deliveries(
        &self,
        from: u64,
        to: u64,
        deliveries: Vec<NewDelivery>,
    ) -> StoreResult<bool>;

    /// Claims up to `limit` due deliveries until `lease_until_ms`, counting
    /// an attempt for each: a delivery claimed by one process (or replica)
    /// is not claimed by another until its lease runs out, which is how an
    /// attempt cut short by a crash is made again. A delivery waits while
    /// an earlier one to the same target about the same decision is
    /// pending, so each target sees a decision's events in order.
    async fn claim_deliveries(
        &self,
        now_ms: i64,
        lease_until_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<Delivery>>;

    /// Records attempts and what follows each, and releases their claims,
    /// in one transaction (the dispatcher gathers finished attempts).
    async fn finish_deliveries(&self, done: &[(DeliveryAttempt, DeliveryNext)]) -> StoreResult<()>;

    /// Makes a delivery due now with a fresh count of attempts and age;
    /// false if there is no such delivery or it was delivered.
    async fn retry_delivery(&self, id: &str, now_ms: i64) -> StoreResult<bool>;

    async fn get_delivery(&self, id: &str) -> StoreResult<Option<Delivery>>;

    async fn list_deliveries(&self, query: &DeliveryQuery) -> StoreResult<Vec<Delivery>>;

    /// A delivery's attempts, oldest first.
    async fn delivery_attempts(&self, id: &str) -> StoreResult<Vec<DeliveryAttempt>>;

    /// Remembers something a channel needs later about a decision (a
    /// Slack message's `ts`, by channel id), replacing an earlier value.
    async fn put_notification_ref(
        &self,
        decision_id: &str,
        key: &str,
        value: &str,
    ) -> StoreResult<()>;

    async fn notification_ref(&self, decision_id: &str, key: &str) -> StoreResult<Option<String>>;

    async fn create_webhook(&self, w: &WebhookRecord) -> StoreResult<()>;
    async fn list_webhooks(&self) -> StoreResult<Vec<WebhookRecord>>;
    /// False if there was no such subscription.
    async fn delete_webhook(&self, id: &str) -> StoreResult<bool>;
}

/// The columns [`delivery_from`] reads, in its order.
pub const DELIVERY_COLUMNS: &str = "id, log_index, position, decision_id, event_type, channel, \
     target, payload, created_at_ms, status, attempts, next_attempt_at_ms, age_from_ms, \
     last_attempt_at_ms, last_status_code, last_error, delivered_at_ms";

/// A delivery from a row of [`DELIVERY_COLUMNS`].
pub fn delivery_from(r: &dyn Columns) -> StoreResult<Delivery> {
    let code = r
        .opt_int(14)?
        .map(|c| u16::try_from(c).map_err(|_| StoreError::Corrupt(format!("status code {c}"))))
        .transpose()?;
    Ok(Delivery {
        new: NewDelivery {
            id: r.text(0)?,
            log_index: non_negative(r.int(1)?)?,
            position: r.int(2)?,
            decision_id: r.text(3)?,
            event_type: r.text(4)?,
            channel: r.text(5)?,
            target: r.text(6)?,
            payload: r.text(7)?,
            created_at_ms: r.int(8)?,
        },
        status: DeliveryStatus::parse(&r.text(9)?)?,
        attempts: u32::try_from(r.int(10)?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        next_attempt_at_ms: r.int(11)?,
        age_from_ms: r.int(12)?,
        last_attempt_at_ms: r.opt_int(13)?,
        last_status_code: code,
        last_error: r.opt_text(15)?,
        delivered_at_ms: r.opt_int(16)?,
    })
}

/// The columns [`attempt_from`] reads, in its order.
pub const ATTEMPT_COLUMNS: &str = "delivery_id, attempt, at_ms, duration_ms, status_code, error";

pub fn attempt_from(r: &dyn Columns) -> StoreResult<DeliveryAttempt> {
    Ok(DeliveryAttempt {
        delivery_id: r.text(0)?,
        attempt: u32::try_from(r.int(1)?).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        at_ms: r.int(2)?,
        duration_ms: r.int(3)?,
        status_code: r
            .opt_int(4)?
            .map(|c| u16::try_from(c).map_err(|e| StoreError::Corrupt(e.to_string())))
            .transpose()?,
        error: r.opt_text(5)?,
    })
}

/// The columns [`webhook_from`] reads, in its order.
pub const WEBHOOK_COLUMNS: &str = "id, url, secret, events, created_by, created_at_ms";

pub fn webhook_from(r: &dyn Columns) -> StoreResult<WebhookRecord> {
    Ok(WebhookRecord {
        id: r.text(0)?,
        url: r.text(1)?,
        secret: r.text(2)?,
        events: serde_json::from_str(&r.text(3)?)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        created_by: r.text(4)?,
        created_at_ms: r.int(5)?,
    })
}

/// The statement both backends claim due deliveries with, less the
/// locking clause (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite's single
/// writer needs none) and an index hint (`hint`, e.g. SQLite's
/// `INDEXED BY deliveries_due`: without statistics its planner prefers
/// the status index and sorts the whole backlog). Parameters: now, lease
/// end, limit — as `?1..?3` on SQLite and `$1..$3` on PostgreSQL, which
/// the caller substitutes.
pub fn claim_sql(param: fn(usize) -> String, hint: &str, lock: &str) -> String {
    format!(
        "UPDATE deliveries SET claimed_until_ms = {lease}, attempts = attempts + 1
         WHERE id IN (
           SELECT c.id FROM deliveries c {hint}
           WHERE c.status = 'pending' AND c.next_attempt_at_ms <= {now}
             AND c.claimed_until_ms <= {now}
             AND NOT EXISTS (
               SELECT 1 FROM deliveries e
               WHERE e.status = 'pending' AND e.decision_id = c.decision_id
                 AND e.channel = c.channel AND e.target = c.target
                 AND e.position < c.position)
           ORDER BY c.next_attempt_at_ms, c.position
           LIMIT {limit} {lock})
         RETURNING {DELIVERY_COLUMNS}",
        now = param(1),
        lease = param(2),
        limit = param(3),
    )
}

/// The status, next due time and delivery time an attempt's result sets.
pub fn finished(next: &DeliveryNext, at_ms: i64) -> (&'static str, Option<i64>, Option<i64>) {
    match next {
        DeliveryNext::Delivered => ("delivered", None, Some(at_ms)),
        DeliveryNext::RetryAt(at) => ("pending", Some(*at), None),
        DeliveryNext::Dead => ("dead", None, None),
    }
}

fn non_negative(v: i64) -> StoreResult<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt(format!("negative log index {v}")))
}
