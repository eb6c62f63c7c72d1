//! The review queue: review decisions without a label, oldest first, worked
//! from the keyboard (j/k move, a approve = legit, d decline = fraud,
//! t/b trust/block the customer, l add its card, device or email to a
//! list, o open). Plain forms without script.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

use super::super::auth::Session;
use super::super::html::{time, url, Html};
use super::super::{html, layout, query, PageResult};
use super::{amount, pager, rules_list};
use crate::service::console_data;
use crate::state::AppState;

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> PageResult {
    let sub = session.subscriber()?;
    let q = query(q);
    let after = console_data::parse_cursor(q.get("after").map(String::as_str))?;
    let (page, depth) = console_data::review_queue(app.store.as_ref(), sub, after).await?;
    let offer = super::lists::Offer::load(&app, sub).await?;
    let csrf = session.csrf();
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Review queue</h1>");
    h.el(
        "p",
        "class=\"muted\"",
        &format!("{depth} waiting · oldest first"),
    );
    h.raw("</div><p class=\"keys\" id=\"keys\"><kbd>j</kbd>/<kbd>k</kbd> move · <kbd>a</kbd> approve (legit) · \
           <kbd>d</kbd> decline (fraud) · <kbd>t</kbd> trust customer · <kbd>b</kbd> block customer · \
           <kbd>l</kbd> add to list · <kbd>o</kbd> open</p>");
    if page.items.is_empty() {
        h.el("p", "class=\"empty\"", "Nothing to review. 🎉");
    }
    h.raw("<ol class=\"queue\" data-keys=\"queue\">");
    for d in &page.items {
        let href = format!("/console/decisions/{}", url(&d.id));
        h.raw("<li class=\"item\" tabindex=\"0\"><div class=\"what\">");
        h.raw("<a class=\"open\" href=\"").text(&href).raw("\">");
        amount(&mut h, d);
        h.raw("</a> ");
        h.el(
            "span",
            "class=\"muted\"",
            &format!(
                "· {} · {} · score {:.2} · {}",
                d.card.as_deref().unwrap_or("no card"),
                d.country.as_deref().unwrap_or("—"),
                d.risk_score,
                time(d.created_at)
            ),
        );
        h.raw("<div class=\"why\">");
        rules_list(&mut h, d);
        h.raw("</div></div><div class=\"acts\">");
        let label_url = format!("{href}/label");
        let next = [("next", "/console/review")];
        h.post_button(
            &label_url,
            csrf,
            &[("label", "legit"), next[0]],
            "ok",
            "Approve",
            "data-key=\"a\"",
        );
        h.post_button(
            &label_url,
            csrf,
            &[("label", "fraud"), next[0]],
            "bad",
            "Decline",
            "data-key=\"d\"",
        );
        if let Some(user) = &d.user_id {
            let status_url = format!("/console/customers/{}/status", url(user));
            h.post_button(
                &status_url,
                csrf,
                &[("status", "trusted"), next[0]],
                "",
                "Trust user",
                "data-key=\"t\"",
            );
            h.post_button(
                &status_url,
                csrf,
                &[("status", "blocked"), next[0]],
                "",
                "Block user",
                "data-key=\"b\"",
            );
        }
        super::lists::queue_form(&mut h, &offer, csrf, &d.id, &d.list_values);
        h.raw("</div></li>");
    }
    h.raw("</ol>");
    let keep: Vec<(String, String)> = q.into_iter().collect();
    pager(&mut h, &page, "/console/review", "after", &keep);
    Ok(html(
        StatusCode::OK,
        layout("Review queue", Some(&session), "/console/review", &h.0),
    ))
}
