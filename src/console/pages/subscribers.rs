//! The operator picks the subscriber whose data the console shows.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};

use super::super::auth::Session;
use super::super::html::Html;
use super::super::{html, layout, pairs, see_other, PageError, PageResult};
use crate::service::{console, operator};
use crate::state::AppState;

pub async fn page(State(app): State<AppState>, session: Session) -> PageResult {
    if !session.principal.is_operator() {
        return Err(PageError::Forbidden(
            "Only the operator picks a subscriber.".into(),
        ));
    }
    let list = operator::list_subscribers(app.store.as_ref()).await?;
    let mut h = Html::new();
    h.raw("<h1>Pick a subscriber</h1>");
    if list.subscribers.is_empty() {
        h.el("p", "class=\"empty\"", "No subscriber yet.");
    }
    h.raw("<ul class=\"plain pick\">");
    for s in &list.subscribers {
        h.raw("<li>");
        h.post_button(
            "/console/subscribers",
            session.csrf(),
            &[("subscriber_id", &s.id)],
            "",
            &format!("{} ({})", s.name, s.id),
            "",
        );
        h.raw("</li>");
    }
    h.raw("</ul>");
    Ok(html(
        StatusCode::OK,
        layout("Subscribers", Some(&session), "", &h.0),
    ))
}

pub async fn pick(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let id = form
        .get("subscriber_id")
        .map(String::as_str)
        .unwrap_or_default();
    console::pick_subscriber(app.store.as_ref(), &session.principal, id).await?;
    Ok(see_other(None, "/console/overview"))
}
