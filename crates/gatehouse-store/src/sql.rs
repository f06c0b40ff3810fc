//! What both backends compute the same way, written once: column lists,
//! row mapping, the decision list query, and the review rule. The two
//! differ only in how they spell bind parameters ([`Dialect`]) and how a
//! row hands out its columns ([`Columns`]).

use gatehouse_core::decision::{from_unix_millis, to_unix_millis};
use gatehouse_core::execution::{ExecutionReceipt, OutcomeRecord};
use gatehouse_core::{Decision, Review, Role, Status};
use gatehouse_log::entry::LogEntry;
use time::OffsetDateTime;

use crate::{
    ApiKey, Arg, DecisionQuery, IssuedToken, ListOrder, PolicyVersion, Redemption, StoreError,
    StoreResult, User,
};

/// A decision as first written (`body`) and its mutable state.
pub const DECISION_COLUMNS: &str =
    "body, status, review, resolved_at_ms, log_index, flag_reason, reviews";
pub const KEY_COLUMNS: &str =
    "id, name, role, secret_hash, created_at_ms, revoked_at_ms, minted_by, user_name";
/// A user's columns; the groups come from `user_groups`, aggregated by
/// each backend into the last column as one comma-separated text.
pub const USER_COLUMNS: &str = "name, role, email, password_hash, created_at_ms, disabled_at_ms";
pub const TOKEN_COLUMNS: &str = "decision_id, jti, kid, token, expires_at_ms, created_at_ms";
pub const REDEMPTION_COLUMNS: &str = "jti, decision_id, redeemed_by, redeemed_at_ms";
pub const POLICY_VERSION_COLUMNS: &str = "version, files_json, first_used_at_ms";

/// How a backend spells the n-th (1-based) bind parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    pub fn param(self, n: usize) -> String {
        match self {
            Dialect::Sqlite => format!("?{n}"),
            Dialect::Postgres => format!("${n}"),
        }
    }
}

/// A row's columns by position, as a backend's driver hands them out.
pub trait Columns {
    fn text(&self, i: usize) -> StoreResult<String>;
    fn opt_text(&self, i: usize) -> StoreResult<Option<String>>;
    fn int(&self, i: usize) -> StoreResult<i64>;
    fn opt_int(&self, i: usize) -> StoreResult<Option<i64>>;
    fn blob(&self, i: usize) -> StoreResult<Vec<u8>>;
}

fn corrupt(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A decision from a row of [`DECISION_COLUMNS`]: the body as first
/// written, with the mutable state from its own columns.
pub fn decision_from_row(row: &dyn Columns) -> StoreResult<Decision> {
    let mut d: Decision = serde_json::from_str(&row.text(0)?).map_err(corrupt)?;
    let status = row.text(1)?;
    d.status = Status::parse(&status).ok_or_else(|| corrupt(format!("status {status:?}")))?;
    d.review = row
        .opt_text(2)?
        .map(|r| serde_json::from_str::<Review>(&r))
        .transpose()
        .map_err(corrupt)?;
    d.resolved_at = row.opt_int(3)?.map(from_unix_millis);
    d.log_index = row.opt_int(4)?.map(|i| i as u64);
    d.flag = row.opt_text(5)?;
    d.reviews = row
        .opt_text(6)?
        .map(|r| serde_json::from_str::<Vec<Review>>(&r))
        .transpose()
        .map_err(corrupt)?
        .unwrap_or_default();
    Ok(d)
}

/// How many admin keys are not revoked; binds nothing.
pub fn active_admins_sql() -> String {
    "SELECT COUNT(*) FROM api_keys WHERE role = 'admin' AND revoked_at_ms IS NULL".to_string()
}

/// A key from a row of [`KEY_COLUMNS`].
pub fn key_from_row(row: &dyn Columns) -> StoreResult<ApiKey> {
    let role = row.text(2)?;
    Ok(ApiKey {
        id: row.text(0)?,
        name: row.text(1)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("role {role:?}")))?,
        secret_hash: row.blob(3)?,
        created_at: from_unix_millis(row.int(4)?),
        revoked_at: row.opt_int(5)?.map(from_unix_millis),
        minted_by: row.opt_text(6)?,
        user: row.opt_text(7)?,
    })
}

/// Every user (or the one named by the first parameter, with `one`),
/// with its groups aggregated into the last column.
pub fn users_sql(dialect: Dialect, one: bool) -> String {
    let agg = match dialect {
        Dialect::Sqlite => "group_concat(g.group_name, ',')",
        Dialect::Postgres => "string_agg(g.group_name, ',')",
    };
    let columns = USER_COLUMNS
        .split(", ")
        .map(|c| format!("u.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let filter = if one {
        format!("WHERE u.name = {}", dialect.param(1))
    } else {
        String::new()
    };
    format!(
        "SELECT {columns}, {agg} FROM users u LEFT JOIN user_groups g ON g.user_name = u.name
         {filter} GROUP BY {columns} ORDER BY u.name"
    )
}

/// A user from a row of [`USER_COLUMNS`] followed by its groups joined
/// with commas (group names cannot contain one).
pub fn user_from_row(row: &dyn Columns) -> StoreResult<User> {
    let role = row.text(1)?;
    let groups = row.opt_text(6)?.unwrap_or_default();
    let mut groups: Vec<String> = groups
        .split(',')
        .filter(|g| !g.is_empty())
        .map(str::to_string)
        .collect();
    groups.sort();
    groups.dedup();
    Ok(User {
        name: row.text(0)?,
        role: Role::parse(&role).ok_or_else(|| corrupt(format!("role {role:?}")))?,
        email: row.opt_text(2)?,
        groups,
        password_hash: row.text(3)?,
        created_at: from_unix_millis(row.int(4)?),
        disabled_at: row.opt_int(5)?.map(from_unix_millis),
    })
}

/// A redemption from a row of [`REDEMPTION_COLUMNS`].
pub fn redemption_from_row(row: &dyn Columns) -> StoreResult<Redemption> {
    Ok(Redemption {
        jti: row.text(0)?,
        decision_id: row.text(1)?,
        redeemed_by: row.text(2)?,
        at: from_unix_millis(row.int(3)?),
    })
}

/// A token from a row of [`TOKEN_COLUMNS`].
pub fn token_from_row(row: &dyn Columns) -> StoreResult<IssuedToken> {
    let unsigned = row.text(3)?;
    Ok(IssuedToken {
        decision_id: row.text(0)?,
        jti: row.text(1)?,
        kid: row.text(2)?,
        claims_hash: gatehouse_log::entry::claims_hash_of_jwt(&unsigned).unwrap_or_default(),
        unsigned,
        expires_at: from_unix_millis(row.int(4)?),
        created_at: from_unix_millis(row.int(5)?),
    })
}

/// A policy version from a row of [`POLICY_VERSION_COLUMNS`].
pub fn policy_version_from_row(row: &dyn Columns) -> StoreResult<PolicyVersion> {
    Ok(PolicyVersion {
        version: row.text(0)?,
        files_json: row.text(1)?,
        policy_hashes: Default::default(),
        first_used_at: from_unix_millis(row.int(2)?),
    })
}

/// The decision list for the filters `query` sets (see
/// [`DecisionQuery::filters`]), newest first. Bind the filters' values in
/// order, then the limit.
pub fn list_decisions_sql(q: &DecisionQuery, dialect: Dialect) -> (String, Vec<Arg>) {
    // Without statistics SQLite reads every pending row through the status
    // index and sorts them for the queue's order; the queue's partial index
    // gives them in order (a plan test checks it).
    let indexed = match (dialect, q.status, q.order) {
        (Dialect::Sqlite, Some(Status::PendingReview), ListOrder::Deadline) => {
            " INDEXED BY decisions_pending_queue"
        }
        _ => "",
    };
    let mut sql = format!("SELECT {DECISION_COLUMNS} FROM decisions{indexed} WHERE 1 = 1");
    let mut args: Vec<Arg> = Vec::new();
    // Each condition is written only when its filter is set: the catch-all
    // form `(? IS NULL OR status = ?)` keeps both databases from using the
    // status and task indexes.
    let mut cond = |sql: &mut String, template: &str, values: Vec<Arg>| {
        // Each `?` of the template becomes the next parameter.
        let mut parts = template.split('?');
        let mut text = parts.next().unwrap_or_default().to_string();
        for (v, rest) in values.into_iter().zip(parts) {
            args.push(v);
            text.push_str(&dialect.param(args.len()));
            text.push_str(rest);
        }
        sql.push_str(" AND ");
        sql.push_str(&text);
    };
    let json_field = |path: &str| match dialect {
        Dialect::Sqlite => format!("json_extract(body, '$.request.{path}')"),
        Dialect::Postgres => format!("(body::jsonb #>> '{{request,{path}}}')"),
    };
    if let Some(s) = q.status {
        // A literal, not a parameter: SQLite uses a partial index (the
        // queue's, on pending decisions) only when it can see the value.
        // Status names are fixed words, never caller text.
        cond(&mut sql, &format!("status = '{}'", s.as_str()), Vec::new());
    }
    if let Some(t) = &q.task_id {
        cond(&mut sql, "task_id = ?", vec![Arg::Text(t.clone())]);
    }
    for (field, value) in [
        ("agent", &q.workflow),
        ("action", &q.tool),
        ("subject", &q.subject),
    ] {
        if let Some(v) = value {
            cond(
                &mut sql,
                &format!("{} = ?", json_field(field)),
                vec![Arg::Text(v.clone())],
            );
        }
    }
    if let Some(person) = &q.person {
        let quoted = serde_json::to_string(person).unwrap_or_default();
        let escaped = quoted
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        cond(
            &mut sql,
            "reviews LIKE ? ESCAPE '\\'",
            vec![Arg::Text(format!("%{escaped}%"))],
        );
    }
    if let Some(ms) = q.since_ms {
        cond(&mut sql, "created_at_ms >= ?", vec![Arg::Int(ms)]);
    }
    if let Some(ms) = q.until_ms {
        cond(&mut sql, "created_at_ms < ?", vec![Arg::Int(ms)]);
    }
    let order = match q.order {
        ListOrder::Newest => {
            if let Some(b) = &q.before {
                cond(&mut sql, "id < ?", vec![Arg::Text(b.clone())]);
            }
            "id DESC"
        }
        ListOrder::Oldest => {
            if let Some(a) = &q.after {
                cond(&mut sql, "id > ?", vec![Arg::Text(a.clone())]);
            }
            "id ASC"
        }
        ListOrder::Deadline => {
            if let Some((ms, id)) = q.after.as_deref().and_then(|a| a.split_once(':')) {
                let ms: i64 = ms.parse().unwrap_or(i64::MIN);
                cond(
                    &mut sql,
                    "(deadline_ms > ? OR (deadline_ms = ? AND id > ?))",
                    vec![Arg::Int(ms), Arg::Int(ms), Arg::Text(id.to_string())],
                );
            }
            "deadline_ms ASC, id ASC"
        }
    };
    args.push(Arg::Int(i64::from(q.limit)));
    sql.push_str(&format!(
        " ORDER BY {order} LIMIT {}",
        dialect.param(args.len())
    ));
    (sql, args)
}

/// The newest leaf about a record; binds the record's id (`ref_id`). A new
/// entry about a decision names this leaf's hash as its `prev`.
pub fn last_leaf_sql(dialect: Dialect) -> String {
    format!(
        "SELECT leaf FROM log_entries WHERE ref_id = {} ORDER BY idx DESC LIMIT 1",
        dialect.param(1)
    )
}

/// `entry` as it is appended: an entry about a decision is chained after
/// `last_leaf`, the newest leaf about the same decision (an entry with no
/// leaf before it names none, which every verifier reports).
pub fn chained(entry: &LogEntry, last_leaf: Option<&[u8]>) -> LogEntry {
    if !entry.event.is_chained() || entry.prev.is_some() {
        return entry.clone();
    }
    let prev = last_leaf
        .map(|leaf| hex::encode(gatehouse_log::proof::leaf_hash(leaf).0))
        .unwrap_or_default();
    entry.clone().after(prev)
}

/// How many decisions have a status; binds the status.
pub fn count_decisions_sql(dialect: Dialect) -> String {
    format!(
        "SELECT COUNT(*) FROM decisions WHERE status = {}",
        dialect.param(1)
    )
}

/// Stores a judged review (see [`judge_review`]): only a decision still
/// pending changes. Binds: id, status, the resolving review (JSON or
/// NULL), every review (JSON), the resolution time in ms (or NULL), the
/// next escalation in ms (or NULL). Returns the row as
/// [`DECISION_COLUMNS`].
pub fn review_sql(dialect: Dialect) -> String {
    let p = |n| dialect.param(n);
    format!(
        "UPDATE decisions SET status = {p2}, review = {p3}, reviews = {p4}, resolved_at_ms = {p5}, escalate_at_ms = {p6}
         WHERE id = {p1} AND status = 'pending_review'
         RETURNING {DECISION_COLUMNS}",
        p1 = p(1),
        p2 = p(2),
        p3 = p(3),
        p4 = p(4),
        p5 = p(5),
        p6 = p(6),
    )
}

/// A review judged against its decision: the columns [`review_sql`] binds.
pub struct JudgedReview {
    pub status: Status,
    pub review: Option<String>,
    pub reviews: String,
    pub resolved_at_ms: Option<i64>,
    pub escalate_at_ms: Option<i64>,
}

/// Judges `review` of `current` (read in the transaction that will store
/// it) by the decision's review rule: refused if the decision is no longer
/// pending, is past its deadline, or the rule refuses the reviewer;
/// otherwise the decision's new state, resolved once the reviews meet the
/// rule. Both backends call this under their write lock.
pub fn judge_review(current: &Decision, review: &Review) -> StoreResult<JudgedReview> {
    let at_ms = to_unix_millis(review.reviewed_at);
    let past_deadline = current
        .deadline
        .is_some_and(|dl| to_unix_millis(dl) <= at_ms);
    if current.status != Status::PendingReview || past_deadline {
        return Err(why_not_reviewable(current));
    }
    let prior: Vec<_> = current
        .reviews
        .iter()
        .map(|r| r.vote(&current.action_hash))
        .collect();
    let vote = review.vote(&current.action_hash);
    if let Some(rule) = &current.review_rule {
        rule.check(&current.created_by, &prior, &vote)
            .map_err(StoreError::ReviewRefused)?;
    }
    let mut reviews = current.reviews.clone();
    reviews.push(review.clone());
    let mut votes = prior;
    votes.push(vote);
    let outcome = current.rule().tally(&votes, &current.action_hash).outcome;
    let resolved = outcome.is_some();
    Ok(JudgedReview {
        status: outcome.unwrap_or(Status::PendingReview),
        review: resolved
            .then(|| serde_json::to_string(review))
            .transpose()
            .map_err(corrupt)?,
        reviews: serde_json::to_string(&reviews).map_err(corrupt)?,
        resolved_at_ms: resolved.then_some(at_ms),
        escalate_at_ms: if resolved {
            None
        } else {
            current.next_escalation_ms(at_ms)
        },
    })
}

/// The groups whose escalation falls in (`since_ms`, `now_ms`] (the first
/// sweep after creation passes `i64::MIN`), for the sweeper to log.
pub fn escalations_due(d: &Decision, since_ms: i64, now_ms: i64) -> Vec<String> {
    let Some(rule) = &d.review_rule else {
        return Vec::new();
    };
    let mut groups: Vec<String> = rule
        .requirements
        .iter()
        .filter_map(|r| match (&r.escalate_to, r.escalate_at_ms()) {
            (Some(g), Some(at)) if at >= since_ms && at <= now_ms => Some(g.clone()),
            _ => None,
        })
        .collect();
    groups.sort();
    groups.dedup();
    groups
}

/// Why a review cannot apply to `current`: it is final already, or still
/// pending but past its deadline (so expired, whether or not the sweeper
/// has run yet).
pub fn why_not_reviewable(current: &Decision) -> StoreError {
    let status = match current.status {
        Status::PendingReview => Status::Expired,
        other => other,
    };
    StoreError::NotPending(status.as_str().into())
}

/// A receipt or an outcome as stored: its table, ids, JSON body, and the
/// log entry appended with it.
pub struct EvidenceRow {
    pub table: &'static str,
    pub id: String,
    pub decision_id: String,
    pub body: String,
    pub entry: LogEntry,
}

impl EvidenceRow {
    pub fn execution(r: &ExecutionReceipt, at: OffsetDateTime) -> StoreResult<Self> {
        Ok(EvidenceRow {
            table: "executions",
            id: r.execution_id.clone(),
            decision_id: r.decision_id.clone(),
            body: serde_json::to_string(r).map_err(corrupt)?,
            entry: LogEntry::execution(r, at),
        })
    }

    pub fn outcome(o: &OutcomeRecord, at: OffsetDateTime) -> StoreResult<Self> {
        Ok(EvidenceRow {
            table: "outcomes",
            id: o.outcome_id.clone(),
            decision_id: o.decision_id.clone(),
            body: serde_json::to_string(o).map_err(corrupt)?,
            entry: LogEntry::outcome(o, at),
        })
    }

    /// Binds: id, decision id, body, log index.
    pub fn insert_sql(&self, dialect: Dialect) -> String {
        let p = |n| dialect.param(n);
        format!(
            "INSERT INTO {} (id, decision_id, body, log_index) VALUES ({}, {}, {}, {})",
            self.table,
            p(1),
            p(2),
            p(3),
            p(4)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_dialects_get_the_same_statements_but_for_parameters() {
        let q = DecisionQuery {
            status: Some(Status::PendingReview),
            before: Some("dec_9".into()),
            limit: 10,
            ..Default::default()
        };
        let (sqlite, args) = list_decisions_sql(&q, Dialect::Sqlite);
        let (postgres, _) = list_decisions_sql(&q, Dialect::Postgres);
        assert_eq!(args.len(), 2);
        assert!(
            sqlite.ends_with("AND status = 'pending_review' AND id < ?1 ORDER BY id DESC LIMIT ?2"),
            "{sqlite}"
        );
        assert_eq!(sqlite.replace('?', "$"), postgres);
        assert_eq!(
            review_sql(Dialect::Sqlite).replace('?', "$"),
            review_sql(Dialect::Postgres)
        );
    }
}
