//! The entries each state change writes, built from the domain's own
//! types, so a store or the application never assembles an entry's fields
//! by hand.

use super::*;

impl LogEntry {
    pub fn decision(d: &Decision) -> LogEntry {
        LogEntry::new(
            &d.id,
            d.created_at,
            LogEvent::Decision {
                request_id: d.request_id.clone(),
                record_hash: d.record_hash.clone(),
                verdict: d.verdict,
                policy_version: d.policy_version.clone(),
                action_hash: d.action_hash.clone(),
                created_by: d.created_by.clone(),
                review_rule: d.review_rule.clone(),
            },
        )
    }

    /// A review; one made under a review rule (it carries the action it
    /// saw) also records who made it, their groups, and whether it
    /// `resolves` the decision.
    pub fn review(decision_id: &str, r: &Review, resolves: bool) -> LogEntry {
        let ruled = r.action_hash.is_some();
        LogEntry::new(
            decision_id,
            r.reviewed_at,
            LogEvent::Review {
                decision: r.decision,
                reviewer: r.reviewer_key_id.clone(),
                reviewer_name: Some(r.reviewer_name.clone().unwrap_or_default()),
                comment_hash: r.comment.as_deref().map(comment_hash),
                person: ruled.then(|| r.identity().to_string()),
                groups: ruled.then(|| r.groups.clone()),
                action_hash: r.action_hash.clone(),
                resolves: ruled.then_some(resolves),
            },
        )
    }

    /// `group` became eligible to review a pending decision.
    pub fn escalation(decision_id: &str, group: &str, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            decision_id,
            at,
            LogEvent::Escalation {
                group: group.to_string(),
            },
        )
    }

    pub fn expiry(decision_id: &str, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(decision_id, at, LogEvent::Expiry {})
    }

    pub fn task_event(e: &TaskEvent) -> LogEntry {
        LogEntry::new(
            &e.id,
            e.created_at,
            LogEvent::TaskEvent {
                task_id: e.task_id.clone(),
                decision_id: e.decision_id.clone(),
                kind: e.kind.clone(),
                message_hash: e.message.as_ref().map(digest),
                data_hash: digest(&e.data),
                created_by: e.created_by.clone(),
            },
        )
    }

    /// A policy version, with `sha256:` of each policy's text by id (see
    /// [`text_hash`]).
    pub fn policy_version(
        version: &str,
        files_json: &str,
        policies: BTreeMap<String, String>,
        at: OffsetDateTime,
    ) -> LogEntry {
        let files_hash = text_hash(files_json);
        LogEntry::new(
            version,
            at,
            LogEvent::PolicyVersion {
                files_hash,
                policies: Some(policies),
            },
        )
    }

    /// An approval token; `claims_hash` is [`claims_hash`] of its claims.
    pub fn token_issued(
        decision_id: &str,
        jti: &str,
        kid: &str,
        expires_at: OffsetDateTime,
        claims_hash: &str,
        at: OffsetDateTime,
    ) -> LogEntry {
        LogEntry::new(
            decision_id,
            at,
            LogEvent::TokenIssued {
                jti: jti.to_string(),
                kid: kid.to_string(),
                exp: rfc3339(expires_at),
                claims_hash: Some(claims_hash.to_string()),
            },
        )
    }

    pub fn token_redeemed(
        decision_id: &str,
        jti: &str,
        redeemed_by: &str,
        at: OffsetDateTime,
    ) -> LogEntry {
        LogEntry::new(
            decision_id,
            at,
            LogEvent::TokenRedeemed {
                jti: jti.to_string(),
                redeemed_by: redeemed_by.to_string(),
            },
        )
    }

    pub fn execution(r: &ExecutionReceipt, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            &r.decision_id,
            at,
            LogEvent::Execution {
                execution_id: r.execution_id.clone(),
                execution_hash: r.hash(),
                action_hash: r.action_hash.clone(),
                token_jti: r.token_jti.clone(),
            },
        )
    }

    pub fn outcome(o: &OutcomeRecord, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            &o.decision_id,
            at,
            LogEvent::Outcome {
                outcome_id: o.outcome_id.clone(),
                outcome_hash: o.hash(),
                status: o.status,
            },
        )
    }

    pub fn flag(decision_id: &str, reason: &str, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            decision_id,
            at,
            LogEvent::Flag {
                reason: reason.to_string(),
            },
        )
    }

    /// An API key was created or revoked.
    pub fn api_key(key_id: &str, change: KeyChange, role: Role, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            key_id,
            at,
            LogEvent::KeyEvent {
                event: change,
                role: role.as_str().to_string(),
            },
        )
    }

    /// A hook was created or revoked, with the scope it has.
    pub fn hook(
        hook_id: &str,
        change: KeyChange,
        name: &str,
        workflow: &str,
        actions: &[String],
        at: OffsetDateTime,
    ) -> LogEntry {
        LogEntry::new(
            hook_id,
            at,
            LogEvent::HookEvent {
                event: change,
                name: name.to_string(),
                workflow: workflow.to_string(),
                actions: actions.to_vec(),
            },
        )
    }

    /// A user account changed; `groups` is the membership it now has when
    /// the change set it.
    pub fn user(
        name: &str,
        change: UserChange,
        role: Role,
        groups: Option<&[String]>,
        at: OffsetDateTime,
    ) -> LogEntry {
        LogEntry::new(
            name,
            at,
            LogEvent::UserEvent {
                event: change,
                role: role.as_str().to_string(),
                groups: groups.map(<[String]>::to_vec),
            },
        )
    }

    /// An approval-token signing key was put out of force.
    pub fn token_key_retired(kid: &str, at: OffsetDateTime) -> LogEntry {
        LogEntry::new(
            kid,
            at,
            LogEvent::KeyEvent {
                event: KeyChange::Retired,
                role: TOKEN_SIGNING_ROLE.to_string(),
            },
        )
    }
}
