//! Webhook subscriptions and the outbox's deliveries over HTTP (the CLI's
//! `gatehouse deliveries` works on the database).

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use gatehouse_api::error::{AuthErrors, BodyErrors, ErrorBody, NotFound, ServerErrors};
use gatehouse_api::notifications::{
    DeliveriesQuery, DeliveryDetail, DeliveryList, DeliveryView, WebhookBody, WebhookCreated,
    WebhookList, WebhookView,
};
use gatehouse_app::App;
use gatehouse_store::outbox::DeliveryQuery;

use crate::auth::Auth;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath, ApiQuery};

/// Subscribe a URL to events. Deliveries are signed per Standard
/// Webhooks with the secret in the answer, which is shown only once.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/webhooks", tag = "notifications",
    request_body = WebhookBody,
    responses(
        (status = 201, description = "Subscribed", body = WebhookCreated),
        BodyErrors, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn create_webhook(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiJson(body): ApiJson<WebhookBody>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let w = app.create_webhook(&caller, &body.url, body.events).await?;
    Ok((
        StatusCode::CREATED,
        Json(WebhookCreated {
            webhook: WebhookView::from(&w),
            secret: w.secret,
        }),
    ))
}

/// List the subscriptions made through the API (those in the
/// configuration file are not listed).
///
/// Roles: admin.
#[utoipa::path(get, path = "/api/webhooks", tag = "notifications",
    responses((status = 200, description = "Every subscription", body = WebhookList), AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_webhooks(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
) -> Result<Json<WebhookList>, ApiError> {
    let items = app
        .list_webhooks(&caller)
        .await?
        .iter()
        .map(WebhookView::from)
        .collect();
    Ok(Json(WebhookList { items }))
}

/// Delete a subscription; its pending deliveries are dead-lettered at
/// their next attempt.
///
/// Roles: admin.
#[utoipa::path(delete, path = "/api/webhooks/{id}", tag = "notifications",
    params(("id" = String, Path, description = "Subscription id")),
    responses((status = 204, description = "Deleted"), NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn delete_webhook(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<StatusCode, ApiError> {
    app.delete_webhook(&caller, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// List deliveries (webhooks, callbacks, Slack, email), newest first.
///
/// Roles: admin, auditor.
#[utoipa::path(get, path = "/api/deliveries", tag = "notifications",
    params(DeliveriesQuery),
    responses(
        (status = 200, description = "One page", body = DeliveryList),
        (status = 400, description = "`bad_request`: a filter is malformed", body = ErrorBody),
        AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn list_deliveries(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiQuery(query): ApiQuery<DeliveriesQuery>,
) -> Result<Json<DeliveryList>, ApiError> {
    let limit = query.limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::BadRequest(
            "limit must be between 1 and 500".into(),
        ));
    }
    let list = app
        .list_deliveries(
            &caller,
            DeliveryQuery {
                decision_id: query.decision_id,
                status: query.status.map(Into::into),
                before: query.before,
                limit,
            },
        )
        .await?;
    let next_before = (list.len() == limit as usize)
        .then(|| list.last().map(|d| d.new.id.clone()))
        .flatten();
    let items = list.iter().map(DeliveryView::from).collect();
    Ok(Json(DeliveryList { items, next_before }))
}

/// Show a delivery and every attempt at it.
///
/// Roles: admin, auditor.
#[utoipa::path(get, path = "/api/deliveries/{id}", tag = "notifications",
    params(("id" = String, Path, description = "Delivery id")),
    responses((status = 200, description = "The delivery", body = DeliveryDetail), NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn get_delivery(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryDetail>, ApiError> {
    let (d, attempts) = app.delivery(&caller, &id).await?;
    Ok(Json(DeliveryDetail {
        delivery: DeliveryView::from(&d),
        attempts: attempts.iter().map(Into::into).collect(),
    }))
}

/// Make a dead (or pending) delivery due now, with a fresh count of
/// attempts and age.
///
/// Roles: admin.
#[utoipa::path(post, path = "/api/deliveries/{id}/retry", tag = "notifications",
    params(("id" = String, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "Due again", body = DeliveryView),
        (status = 400, description = "`bad_request`: the delivery was delivered already", body = ErrorBody),
        NotFound, AuthErrors, ServerErrors),
    security(("bearer" = []), ("apiKey" = [])))]
pub async fn retry_delivery(
    State(app): State<Arc<App>>,
    Auth(caller): Auth,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<DeliveryView>, ApiError> {
    Ok(Json(DeliveryView::from(
        &app.retry_delivery(&caller, &id).await?,
    )))
}
