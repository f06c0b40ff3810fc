//! The forms that change something: a review from the decision page, and
//! the same review for several selected requests at once (each is still
//! its own review and its own log entry).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use gatehouse_app::sessions::ConsoleSession;
use gatehouse_app::AppError;
use gatehouse_core::ReviewChoice;
use serde_json::{Map, Value};

use crate::pages::{decision_page, page_error};
use crate::session::{check_csrf, Form, Signed};
use crate::{render, Console, MeView};

/// The most requests one bulk review covers.
const MAX_BULK: usize = 100;

/// What a review form asks: the choice, the comment, and an amended
/// payload for "Approve with changes".
type Asked = (ReviewChoice, Option<String>, Option<Map<String, Value>>);

/// Reads a review form. A reject needs a reason.
fn read_review(form: &Form) -> Result<Asked, AppError> {
    let comment = form
        .one("comment")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_string);
    let (choice, amended) = match form.one("decision") {
        Some("approve") => (ReviewChoice::Approve, None),
        Some("reject") => (ReviewChoice::Reject, None),
        Some("approve_with_changes") => {
            let raw = form.one("amended_payload").unwrap_or_default();
            let payload = match serde_json::from_str::<Value>(raw) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(AppError::Validation(
                        "the amended payload must be a JSON object".into(),
                    ))
                }
                Err(e) => {
                    return Err(AppError::Validation(format!(
                        "the amended payload is not valid JSON: {e}"
                    )))
                }
            };
            (ReviewChoice::Approve, Some(payload))
        }
        _ => {
            return Err(AppError::Validation(
                "choose Approve, Reject or Approve with changes".into(),
            ))
        }
    };
    if choice == ReviewChoice::Reject && comment.is_none() {
        return Err(AppError::Validation(
            "a reject needs a reason in the comment".into(),
        ));
    }
    Ok((choice, comment, amended))
}

fn done(choice: ReviewChoice, amended: bool, status: &str) -> String {
    let what = match (choice, amended) {
        (ReviewChoice::Approve, true) => "Approved with changes",
        (ReviewChoice::Approve, false) => "Approved",
        (ReviewChoice::Reject, _) => "Rejected",
    };
    format!("{what}; the request is now {status}.")
}

async fn shown_with_error(
    console: &Console,
    s: &ConsoleSession,
    id: &str,
    e: AppError,
) -> Response {
    let status = match &e {
        AppError::Validation(_) | AppError::AmendmentRejected(_) => {
            axum::http::StatusCode::UNPROCESSABLE_ENTITY
        }
        AppError::SchemaMismatch(_) => axum::http::StatusCode::BAD_REQUEST,
        AppError::SelfReview | AppError::NotEligible(_) | AppError::Forbidden { .. } => {
            axum::http::StatusCode::FORBIDDEN
        }
        AppError::NotPending(_) | AppError::AlreadyReviewed(_) => axum::http::StatusCode::CONFLICT,
        _ => return page_error(e, Some(&MeView::of(s))),
    };
    match decision_page(console, s, id, None, Some(e.to_string())).await {
        Ok(page) => (status, render(&page)).into_response(),
        Err(other) => page_error(other, Some(&MeView::of(s))),
    }
}

pub(crate) async fn review(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = check_csrf(&s, &form) {
        return *refused;
    }
    let (choice, comment, amended) = match read_review(&form) {
        Ok(r) => r,
        Err(e) => return shown_with_error(&console, &s, &id, e).await,
    };
    let was_amended = amended.is_some();
    match console
        .app
        .review(&s.caller, &id, choice, comment, amended)
        .await
    {
        Ok(d) => {
            let msg = done(choice, was_amended, d.status.as_str());
            let mut url = form_urlencoded::Serializer::new(String::new());
            url.append_pair("msg", &msg);
            Redirect::to(&format!("/console/decisions/{id}?{}", url.finish())).into_response()
        }
        Err(e) => shown_with_error(&console, &s, &id, e).await,
    }
}

pub(crate) async fn bulk(
    State(console): State<Arc<Console>>,
    Signed(s): Signed,
    body: axum::body::Bytes,
) -> Response {
    let form = Form::parse(&body);
    if let Err(refused) = check_csrf(&s, &form) {
        return *refused;
    }
    let ids = form.all("id");
    let (choice, comment, _) = match read_review(&form) {
        Ok(r) if ids.is_empty() => {
            let _ = r;
            return page_error(
                AppError::Validation("select at least one request".into()),
                Some(&MeView::of(&s)),
            );
        }
        Ok(r) if ids.len() > MAX_BULK => {
            let _ = r;
            return page_error(
                AppError::Validation(format!("select at most {MAX_BULK} requests at once")),
                Some(&MeView::of(&s)),
            );
        }
        Ok(r) => r,
        Err(e) => return page_error(e, Some(&MeView::of(&s))),
    };
    let (mut applied, mut refused) = (0, Vec::new());
    for id in ids {
        match console
            .app
            .review(&s.caller, id, choice, comment.clone(), None)
            .await
        {
            Ok(_) => applied += 1,
            Err(AppError::Unavailable(cause)) => {
                return page_error(AppError::Unavailable(cause), Some(&MeView::of(&s)))
            }
            Err(e) => refused.push(format!("{id}: {e}")),
        }
    }
    let verb = if choice == ReviewChoice::Approve {
        "approved"
    } else {
        "rejected"
    };
    let mut msg = format!("{applied} {verb}");
    if !refused.is_empty() {
        msg.push_str(&format!(
            "; {} refused ({})",
            refused.len(),
            refused.join("; ")
        ));
    }
    let mut url = form_urlencoded::Serializer::new(String::new());
    url.append_pair("msg", &msg);
    Redirect::to(&format!("/console?{}", url.finish())).into_response()
}
