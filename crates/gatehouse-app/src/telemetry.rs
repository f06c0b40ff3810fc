//! The application's metrics, through the `metrics` facade: whichever
//! recorder the process installs (the server's Prometheus one) collects
//! them; without one they cost nothing. Names and labels are part of the
//! operator's contract (README, "Operations").

use gatehouse_core::{Status, Verdict};

use crate::events::Resolution;
use crate::{App, AppResult};

pub(crate) fn decided(verdict: Verdict, action: &str) {
    metrics::counter!(
        "gatehouse_decisions_total",
        "verdict" => verdict_label(verdict),
        "action" => action.to_string()
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
