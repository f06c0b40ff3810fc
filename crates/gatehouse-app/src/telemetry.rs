//! The application's metrics, through the `metrics` facade: whichever
//! recorder the process installs (the server's Prometheus one) collects
//! them; without one they cost nothing. Names and labels are part of the
//! operator's contract (README, "Operations").

use std::collections::HashSet;
use std::sync::{OnceLock, RwLock};

use gatehouse_core::{Status, Verdict};

use crate::events::Resolution;
use crate::{App, AppResult};

/// The one `'static` copy of a metric label value: labels then cost no
/// allocation per event. Values come from small sets (route templates,
/// status codes, the actions a policy schema declares); past
/// [`MAX_LABELS`] distinct values, new ones are counted as `other`, so a
/// caller inventing names cannot grow memory or the metric series.
pub fn intern(value: &str) -> &'static str {
    static SEEN: OnceLock<RwLock<HashSet<&'static str>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(v) = seen.read().ok().and_then(|s| s.get(value).copied()) {
        return v;
    }
    let mut set = match seen.write() {
        Ok(set) => set,
        Err(poisoned) => poisoned.into_inner(),
    };
    if let Some(v) = set.get(value) {
        return v;
    }
    if set.len() >= MAX_LABELS {
        return "other";
    }
    let leaked: &'static str = Box::leak(value.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

/// How many distinct label values [`intern`] keeps.
pub const MAX_LABELS: usize = 2048;

/// `action` is the action the policies evaluated: one the schema declares,
/// or `default` for undeclared ones when the schema has it.
pub(crate) fn decided(verdict: Verdict, action: &str) {
    metrics::counter!(
        "gatehouse_decisions_total",
        "verdict" => verdict_label(verdict),
        "action" => intern(action)
    )
    .increment(1);
}

pub(crate) fn resolved(resolution: Resolution, waited: std::time::Duration) {
    let label = match resolution {
        Resolution::Approved => "approved",
        Resolution::Rejected => "rejected",
        Resolution::Expired => "expired",
    };
    metrics::histogram!("gatehouse_time_to_review_seconds", "resolution" => label)
        .record(waited.as_secs_f64());
}

pub(crate) fn expired(n: usize) {
    metrics::counter!("gatehouse_expirations_total").increment(n as u64);
}

/// `result`: `redeemed`, `rejected` or `already_redeemed`.
pub(crate) fn redemption(result: &'static str) {
    metrics::counter!("gatehouse_token_redemptions_total", "result" => result).increment(1);
}

fn verdict_label(v: Verdict) -> &'static str {
    match v {
        Verdict::Allow => "allow",
        Verdict::Reject => "reject",
        Verdict::PendingReview => "pending_review",
    }
}

impl App {
    /// Sets the gauges that describe the whole database rather than this
    /// replica (pending reviews, log size) from the store, so every replica
    /// reports the same figures. Called before each scrape.
    pub async fn refresh_gauges(&self) -> AppResult<()> {
        let pending = self.store.count_decisions(Status::PendingReview).await?;
        metrics::gauge!("gatehouse_pending_reviews").set(pending as f64);
        let size = self.store.log_size().await?;
        metrics::gauge!("gatehouse_log_size").set(size as f64);
        Ok(())
    }
}
