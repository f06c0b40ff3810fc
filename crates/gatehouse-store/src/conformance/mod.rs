//! The behaviour every [`Store`](crate::Store) must have. Backends run it with
//! [`conformance_tests!`](crate::conformance_tests); each check panics with a
//! description of what the backend got wrong.

use std::sync::Arc;

use gatehouse_core::{ids, ActionRequest, Decision, Review, ReviewChoice, Risk, Verdict};
use serde_json::json;
use time::{Duration, OffsetDateTime};

mod decisions;
mod hooks;
mod log;
mod outbox;
mod reviews;
mod rules;
mod tokens;
mod users;

pub use decisions::*;
pub use hooks::*;
pub use log::*;
pub use outbox::*;
pub use reviews::*;
pub use rules::*;
pub use tokens::*;
pub use users::*;

use gatehouse_log::checkpoint::LogSigner;

/// A fresh checkpoint signer for a test store.
pub fn test_signer() -> Arc<LogSigner> {
    Arc::new(
        LogSigner::generate("gatehouse.test/log")
            .expect("valid origin")
            .1,
    )
}

/// Generates one `#[tokio::test]` per conformance check. `$make` is an async
/// function returning `(Arc<dyn Store>, guard)`; the guard keeps whatever the
/// store needs (a temporary directory, a schema) alive for the test.
#[macro_export]
macro_rules! conformance_tests {
    ($make:path) => {
        $crate::conformance_tests!(@tests $make,
            create_and_get_round_trips,
            idempotency_key_returns_the_original,
            concurrent_idempotent_creates_store_one,
            review_resolves_only_pending,
            review_after_deadline_is_refused,
            concurrent_reviews_apply_once,
            expire_due_moves_only_due_pending,
            list_filters_and_pages,
            decisions_are_counted_by_status,
            events_are_listed_in_order,
            policy_versions_are_write_once,
            keys_create_list_revoke,
            log_records_every_event_with_a_checkpoint,
            concurrent_appends_are_gap_free,
            entries_about_a_decision_form_a_chain,
            a_refused_decision_does_not_fail_its_batch,
            tokens_are_issued_once_and_redeemed_once,
            executions_outcomes_and_flags_are_logged,
            retired_token_keys_stay_while_their_tokens_live,
            users_groups_and_key_owners,
            review_rules_need_every_requirement,
            due_escalations_are_logged_once,
            lists_filter_and_page_in_every_order,
            sessions_are_stored_touched_and_expired,
            outbox_cursor_moves_with_its_deliveries,
            deliveries_are_claimed_once_in_order,
            concurrent_claims_take_each_delivery_once,
            webhooks_and_refs_are_kept,
            hooks_are_scoped_revoked_once_and_logged
        );
    };
    (@tests $make:path, $($name:ident),*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                let (store, _guard) = $make().await;
                $crate::conformance::$name(store).await;
            }
        )*
    };
}

fn now() -> OffsetDateTime {
    gatehouse_core::decision::truncate_to_millis(OffsetDateTime::now_utc())
}

/// A realistic decision, hashed like the server hashes them.
pub fn sample_decision(
    verdict: Verdict,
    created_by: &str,
    idempotency_key: Option<&str>,
    task_id: &str,
) -> Decision {
    let request = ActionRequest {
        agent: "Customer Support".into(),
        action: "issue_refund".into(),
        subject: "cus_99".into(),
        risk: Risk::High,
        summary: vec!["Customer requested refund".into()],
        payload: json!({"amount": 500, "currency": "usd"})
            .as_object()
            .cloned()
            .unwrap(),
        task_id: Some(task_id.into()),
        task_label: Some("Refund".into()),
        preview: None,
        owner: None,
        source_record_id: None,
        question: None,
        evidence: vec![],
        callback_url: None,
    };
    let created_at = now();
    let deadline = (verdict == Verdict::PendingReview).then(|| created_at + Duration::hours(1));
    let id = ids::decision_id();
    let request_id = ids::request_id();
    let context = json!({"risk": "high", "local_hour": 12});
    let action_hash = request.action_hash();
    Decision {
        id,
        request_id,
        created_by: created_by.into(),
        request,
        verdict,
        status: verdict.initial_status(),
        reasons: vec![],
        policy_version: "pv_test".into(),
        evaluated_action: "issue_refund".into(),
        context,
        created_at,
        deadline,
        review: None,
        reviews: Vec::new(),
        review_rule: None,
        resolved_at: None,
        record_hash: String::new(),
        idempotency_key: idempotency_key.map(str::to_string),
        request_hash: "rh".into(),
        action_hash,
        token_ttl_secs: None,
        flag: None,
        log_index: None,
    }
    .seal()
}

fn review(choice: ReviewChoice, at: OffsetDateTime) -> Review {
    Review {
        decision: choice,
        reviewer_key_id: "reviewer1".into(),
        reviewer_name: Some("Rita".into()),
        comment: Some("looks fine".into()),
        reviewed_at: at,
        reviewer_user: None,
        groups: Vec::new(),
        action_hash: None,
        amended_payload: None,
    }
}

/// A token whose text carries claims the way a JWT does (header, base64url
/// claims, signature), so its stored form and its claims hash agree.
pub fn sample_token(
    decision_id: &str,
    jti: &str,
    issued_at: OffsetDateTime,
    expires_at: OffsetDateTime,
) -> crate::IssuedToken {
    use base64::Engine as _;
    let claims = json!({"sub": decision_id, "jti": jti, "exp": expires_at.unix_timestamp()});
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::to_vec(&claims).expect("claims serialise"));
    crate::IssuedToken {
        decision_id: decision_id.into(),
        jti: jti.into(),
        kid: "kid1".into(),
        unsigned: format!("eyJhbGciOiJFZERTQSJ9.{payload}"),
        expires_at,
        created_at: issued_at,
        claims_hash: gatehouse_log::entry::claims_hash(&claims),
    }
}
