//! What the outbox did, for admins and auditors: a decision's deliveries
//! on its page, and the dead letters with a Retry button (admins).

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_app::AppError;
use gatehouse_core::Role;
use gatehouse_store::outbox::{Delivery, DeliveryQuery, DeliveryStatus};

use crate::pages::page_error;
use crate::session::{check_csrf, Form, Signed};
use crate::views::MeView;
use crate::{render, Console};

/// One delivery as the console lists it.
pub struct DeliveryRow {
    pub id: String,
    pub decision_id: String,
    pub event: String,
    pub channel: String,
    pub target: String,
    pub status: String,
    pub attempts: u32,
    /// The last answer or error.
    pub last: String,
    pub at: String,
}

impl DeliveryRow {
    pub fn of(d: &Delivery) -> DeliveryRow {
        let at = |ms: i64| {
            gatehouse_core::decision::rfc3339(gatehouse_core::decision::from_unix_millis(ms))
        };
        DeliveryRow {
            id: d.new.id.clone(),
            decision_id: d.new.decision_id.clone(),
            event: d.new.event_type.clone(),
            channel: d.new.channel.clone(),
            target: d.new.target.clone(),
            status: d.status.as_str().to_string(),
            attempts: d.attempts,
            last: match (&d.last_error, d.last_status_code) {
                (Some(e), _) => e.clone(),
                (None, Some(code)) => format!("answered {code}"),
                (None, None) => String::new(),
            },
            at: at(d.last_attempt_at_ms.unwrap_or(d.new.created_at_ms)),
        }
    }
}

/// A decision's deliveries for its page: empty for reviewers, who may not
/// read deliveries.
pub(crate) async fn of_decision(
    console: &Console,
    s: &gatehouse_app::sessions::ConsoleSession,
    id: &str,
) -> Result<Vec<DeliveryRow>, AppError> {
    if !matches!(s.caller.role, Role::Admin | Role::Auditor) {
        return Ok(Vec::new());
    }
    let query = DeliveryQuery {
        decision_id: Some(id.to_string()),
        limit: 100,
        ..Default::default()
    };
    Ok(console
        .app
        .list_deliveries(&s.caller, query)
        .await?
        .iter()
        .map(DeliveryRow::of)
        .collect())
}

#[derive(Template)]
#[template(path = "deliveries.html")]
struct DeadLetters {
    me: Option<MeView>,
    message: Option<String>,
    error: Option<String>,
    rows: Vec<DeliveryRow>,
    can_retry: bool,
    csrf: String,
}

/// `GET /console/deliveries`: the dead letters, newest first.
pub(crate) async fn dead_letters(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
) -> Response {
    let me = MeView::of(&s);
    let query = DeliveryQuery {
        status: Some(DeliveryStatus::Dead),
        limit: 200,
        ..Default::default()
    };
    match console.app.list_deliveries(&s.caller, query).await {
        Ok(found) => render(&DeadLetters {
            rows: found.iter().map(DeliveryRow::of).collect(),
            can_retry: s.caller.role == Role::Admin,
            csrf: s.csrf.clone(),
            me: Some(me),
            message: None,
            error: None,
        })
        .into_response(),
        Err(e) => page_error(e, Some(&me)),
    }
}

/// `POST /console/deliveries/{id}/retry` (admins).
pub(crate) async fn retry(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    if let Err(refused) = check_csrf(&s, &Form::parse(&body)) {
        return *refused;
    }
    match console.app.retry_delivery(&s.caller, &id).await {
        Ok(_) => Redirect::to("/console/deliveries").into_response(),
        Err(e @ AppError::InvalidArgument(_)) => {
            (StatusCode::CONFLICT, page_error(e, Some(&MeView::of(&s)))).into_response()
        }
        Err(e) => page_error(e, Some(&MeView::of(&s))),
    }
}
