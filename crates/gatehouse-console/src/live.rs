//! Server-sent events for the queue: every domain event about a decision
//! (from the log's tail, so other replicas' too) becomes one `decision`
//! event naming it; the page then fetches its rows again.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;

use crate::pages::page_error;
use crate::session::Signed;
use crate::{Console, MeView};

pub(crate) async fn events(State(console): State<Arc<Console>>, Signed(s): Signed) -> Response {
    let subscription = match console.app.events().subscribe().await {
        Ok(sub) => sub,
        Err(e) => return page_error(e, Some(&MeView::of(&s))),
    };
    // A subscriber that falls behind is cut off; the browser reconnects
    // on its own and the page refreshes its rows then.
    let events = stream::unfold(subscription, |mut sub| async move {
        let published = sub.next().await?;
        let event = Event::default()
            .event("decision")
            .data(published.event.decision_id());
        Some((Ok::<_, Infallible>(event), sub))
    });
    Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response()
}
