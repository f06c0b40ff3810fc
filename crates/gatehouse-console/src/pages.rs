//! The pages: the queue, a decision, the history, and a decision's packet.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_app::console::{may_review, QueueQuery, TimelineStep};
use gatehouse_app::sessions::ConsoleSession;
use gatehouse_app::AppError;
use gatehouse_core::{Risk, Status};
use gatehouse_store::DecisionQuery;
use time::{Date, OffsetDateTime};

use crate::session::{Form, Signed};
use crate::views::{DecisionView, HistoryRow, QueueRow};
use crate::{render, Console, MeView};

pub(crate) type Me = MeView;

/// Rows on one queue or history page.
const PAGE: u32 = 50;

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    me: Option<MeView>,
    message: Option<String>,
    error: Option<String>,
    title: String,
}

/// A refusal or failure as a page with the right status; internal details
/// are logged, never shown.
pub(crate) fn page_error(e: AppError, me: Option<&MeView>) -> Response {
    let (status, title) = match &e {
        AppError::Unauthorized => return Redirect::to("/console/login").into_response(),
        AppError::NotFound(_) => (StatusCode::NOT_FOUND, "Not found"),
        AppError::Forbidden { .. } | AppError::SelfReview | AppError::NotEligible(_) => {
            (StatusCode::FORBIDDEN, "Not allowed")
        }
        AppError::Validation(_) | AppError::AmendmentRejected(_) => {
            (StatusCode::UNPROCESSABLE_ENTITY, "Not accepted")
        }
        AppError::SchemaMismatch(_)
        | AppError::InvalidArgument(_)
        | AppError::CallbackNotAllowed(_) => (StatusCode::BAD_REQUEST, "Not accepted"),
        AppError::NotPending(_) | AppError::AlreadyReviewed(_) | AppError::EvidenceMismatch(_) => {
            (StatusCode::CONFLICT, "Already decided")
        }
        AppError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, "Too many requests"),
        AppError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "Storage unavailable"),
        _ => (StatusCode::INTERNAL_SERVER_ERROR, "Something failed"),
    };
    let error = match &e {
        AppError::Internal(cause) => {
            tracing::error!(%cause, "console request failed");
            "Something failed; nothing was approved.".to_string()
        }
        AppError::Unavailable(cause) => {
            tracing::warn!(%cause, "storage unavailable");
            e.to_string()
        }
        other => other.to_string(),
    };
    let page = ErrorPage {
        me: me.cloned(),
        message: None,
        error: Some(error),
        title: title.into(),
    };
    (status, render(&page)).into_response()
}

/// The queue's filters as the form shows them.
pub(crate) struct QueueFilters {
    workflow: String,
    tool: String,
    group: String,
    by_age: bool,
    risks: Vec<(&'static str, bool)>,
}

fn queue_query(raw: Option<&str>) -> (QueueQuery, QueueFilters, String) {
    let form = Form::parse(raw.unwrap_or_default().as_bytes());
    let text = |k: &str| {
        form.one(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let risk = text("risk").and_then(|r| Risk::parse("risk", &r).ok());
    let by_age = form.one("sort") == Some("age");
    let q = QueueQuery {
        oldest_first: by_age,
        workflow: text("workflow"),
        tool: text("tool"),
        risk,
        group: text("group"),
        after: text("after"),
        limit: PAGE,
    };
    let mut echo = form_urlencoded::Serializer::new(String::new());
    for k in ["workflow", "tool", "risk", "group"] {
        if let Some(v) = text(k) {
            echo.append_pair(k, &v);
        }
    }
    echo.append_pair("sort", if by_age { "age" } else { "deadline" });
    let filters = QueueFilters {
        workflow: q.workflow.clone().unwrap_or_default(),
        tool: q.tool.clone().unwrap_or_default(),
        group: q.group.clone().unwrap_or_default(),
        by_age,
        risks: ["low", "medium", "high"]
            .into_iter()
            .map(|r| (r, risk.is_some_and(|x| x.as_str() == r)))
            .collect(),
    };
    (q, filters, echo.finish())
}

#[derive(Template)]
#[template(path = "queue_rows.html")]
struct QueueRows {
    rows: Vec<QueueRow>,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    me: Option<MeView>,
    message: Option<String>,
    error: Option<String>,
    f: QueueFilters,
    query: String,
    rows_html: String,
    next: Option<String>,
    can_review: bool,
    csrf: String,
}

async fn rows(
    console: &Console,
    s: &ConsoleSession,
    q: QueueQuery,
) -> Result<(String, Option<String>), AppError> {
    let page = console.app.queue(&s.caller, q).await?;
    let now = OffsetDateTime::now_utc();
    let rows = page
        .items
        .iter()
        .map(|d| QueueRow::of(d, may_review(&s.caller, d), now))
        .collect();
    let html = QueueRows { rows }
        .render()
        .map_err(|e| AppError::Internal(e.to_string()))?;
    Ok((html, page.next))
}

pub(crate) async fn queue(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let me = MeView::of(&s);
    let (q, f, query) = queue_query(raw.as_deref());
    let message = Form::parse(raw.as_deref().unwrap_or_default().as_bytes())
        .one("msg")
        .map(str::to_string);
    match rows(&console, &s, q).await {
        Ok((rows_html, next)) => render(&QueuePage {
            can_review: s.caller.role == gatehouse_core::Role::Reviewer,
            csrf: s.csrf.clone(),
            me: Some(me),
            message,
            error: None,
            f,
            query,
            rows_html,
            next,
        }),
        Err(e) => page_error(e, Some(&me)),
    }
}

/// The queue's rows alone, for the live refresh.
pub(crate) async fn queue_rows(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let (q, _, _) = queue_query(raw.as_deref());
    match rows(&console, &s, q).await {
        Ok((html, _)) => axum::response::Html(html).into_response(),
        Err(e) => page_error(e, Some(&MeView::of(&s))),
    }
}

#[derive(Template)]
#[template(path = "decision.html")]
pub(crate) struct DecisionPage {
    pub me: Option<MeView>,
    pub message: Option<String>,
    pub error: Option<String>,
    pub d: DecisionView,
    pub can_review: bool,
    pub csrf: String,
    pub verified: bool,
    pub verify_detail: String,
    pub timeline: Vec<TimelineStep>,
    pub related: Vec<HistoryRow>,
    /// The decision's notifications (admins and auditors).
    pub deliveries: Vec<crate::deliveries::DeliveryRow>,
}

/// The decision page, with `message` or `error` from the last action.
pub(crate) async fn decision_page(
    console: &Console,
    s: &ConsoleSession,
    id: &str,
    message: Option<String>,
    error: Option<String>,
) -> Result<DecisionPage, AppError> {
    let app = &console.app;
    let d = app.read(&s.caller, id).await?;
    let key = app.store().get_key(&d.created_by).await.ok().flatten();
    let asked_by = match key {
        Some(k) => match &k.user {
            Some(u) => format!("{u} (key {}, {})", k.name, k.id),
            None => format!("key {} ({})", k.name, k.id),
        },
        None => d.created_by.clone(),
    };
    let checks = app.verify(&s.caller, id).await?;
    let failed: Vec<String> = checks
        .iter()
        .filter(|c| !c.ok)
        .map(|c| c.detail.clone())
        .collect();
    Ok(DecisionPage {
        can_review: may_review(&s.caller, &d),
        d: DecisionView::of(&d, asked_by),
        me: Some(MeView::of(s)),
        message,
        error,
        csrf: s.csrf.clone(),
        verified: failed.is_empty(),
        verify_detail: failed.join("; "),
        timeline: app.timeline(&s.caller, id).await?,
        related: app
            .related(&s.caller, &d)
            .await?
            .iter()
            .map(HistoryRow::of)
            .collect(),
        deliveries: crate::deliveries::of_decision(console, s, id).await?,
    })
}

pub(crate) async fn decision(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Response {
    let message = Form::parse(raw.as_deref().unwrap_or_default().as_bytes())
        .one("msg")
        .map(str::to_string);
    match decision_page(&console, &s, &id, message, None).await {
        Ok(page) => render(&page),
        Err(e) => page_error(e, Some(&MeView::of(&s))),
    }
}

/// The Decision Packet as a download.
pub(crate) async fn packet(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    Path(id): Path<String>,
) -> Response {
    match console.app.packet(&s.caller, &id).await {
        Ok(p) => {
            let body = serde_json::to_string_pretty(&p).unwrap_or_default();
            let disposition = format!(
                "attachment; filename=\"decision-packet-{}.json\"",
                p.decision_id
            );
            (
                [
                    (CONTENT_TYPE, HeaderValue::from_static("application/json")),
                    (
                        CONTENT_DISPOSITION,
                        HeaderValue::from_str(&disposition)
                            .unwrap_or(HeaderValue::from_static("attachment")),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => page_error(e, Some(&MeView::of(&s))),
    }
}

pub(crate) struct HistoryFilters {
    workflow: String,
    tool: String,
    person: String,
    from: String,
    to: String,
    statuses: Vec<(&'static str, bool)>,
}

#[derive(Template)]
#[template(path = "history.html")]
struct HistoryPage {
    me: Option<MeView>,
    message: Option<String>,
    error: Option<String>,
    f: HistoryFilters,
    rows: Vec<HistoryRow>,
    query: String,
    next: Option<String>,
}

fn day_ms(raw: &str) -> Option<i64> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(raw, &format)
        .ok()
        .map(|d| (d.midnight().assume_utc().unix_timestamp_nanos() / 1_000_000) as i64)
}

pub(crate) async fn history(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    RawQuery(raw): RawQuery,
) -> Response {
    let me = MeView::of(&s);
    let form = Form::parse(raw.as_deref().unwrap_or_default().as_bytes());
    let text = |k: &str| {
        form.one(k)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    let status = text("status").and_then(|s| Status::parse(&s));
    let (from, to) = (text("from"), text("to"));
    let query = DecisionQuery {
        status,
        workflow: text("workflow"),
        tool: text("tool"),
        person: text("person"),
        since_ms: from.as_deref().and_then(day_ms),
        // The end date is included: up to the next midnight.
        until_ms: to.as_deref().and_then(day_ms).map(|ms| ms + 86_400_000),
        before: text("before"),
        limit: PAGE,
        ..Default::default()
    };
    // The serializer is not Send: finished before anything is awaited.
    let echoed = {
        let mut echo = form_urlencoded::Serializer::new(String::new());
        for k in ["status", "workflow", "tool", "person", "from", "to"] {
            if let Some(v) = text(k) {
                echo.append_pair(k, &v);
            }
        }
        echo.finish()
    };
    match console.app.list(&s.caller, query).await {
        Ok(found) => {
            let next = (found.len() == PAGE as usize)
                .then(|| found.last().map(|d| d.id.clone()))
                .flatten();
            render(&HistoryPage {
                me: Some(me),
                message: None,
                error: None,
                f: HistoryFilters {
                    workflow: text("workflow").unwrap_or_default(),
                    tool: text("tool").unwrap_or_default(),
                    person: text("person").unwrap_or_default(),
                    from: from.unwrap_or_default(),
                    to: to.unwrap_or_default(),
                    statuses: [
                        "allow",
                        "reject",
                        "pending_review",
                        "approved",
                        "rejected",
                        "expired",
                    ]
                    .into_iter()
                    .map(|x| (x, status.is_some_and(|s| s.as_str() == x)))
                    .collect(),
                },
                rows: found.iter().map(HistoryRow::of).collect(),
                query: echoed,
                next,
            })
        }
        Err(e) => page_error(e, Some(&me)),
    }
}
