//! A customer: profile, status flag, devices, cards and decisions.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde_json::{Map, Value};

use super::super::auth::Session;
use super::super::html::{time, url, Html};
use super::super::{html, layout, pairs, query, see_other, PageError, PageResult};
use super::{decision_table, pager};
use crate::service::{console_data, customers};
use crate::state::AppState;

fn search_form(h: &mut Html, value: &str) {
    h.raw("<form method=\"get\" action=\"/console/customers\" class=\"filters\"><div class=\"f\">\
           <label for=\"f-user\">User id</label><input id=\"f-user\" name=\"user\" required value=\"")
        .text(value)
        .raw("\"></div><div class=\"f go\"><button type=\"submit\" class=\"primary\">Open</button></div></form>");
}

/// `?user=` opens that customer; without, the search box.
pub async fn find(session: Session, RawQuery(q): RawQuery) -> PageResult {
    session.subscriber()?;
    let q = query(q);
    if let Some(user) = q.get("user").map(|u| u.trim()).filter(|u| !u.is_empty()) {
        return Ok(Redirect::to(&format!("/console/customers/{}", url(user))).into_response());
    }
    let mut h = Html::new();
    h.raw("<h1>Customers</h1>");
    search_form(&mut h, "");
    h.el(
        "p",
        "class=\"muted\"",
        "Or open one from a decision or the review queue.",
    );
    Ok(html(
        StatusCode::OK,
        layout("Customers", Some(&session), "/console/customers", &h.0),
    ))
}

pub async fn show(
    State(app): State<AppState>,
    session: Session,
    Path(user_id): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let sub = session.subscriber()?;
    let q = query(q);
    let before = console_data::parse_cursor(q.get("before").map(String::as_str))?;
    let page = console_data::customer(app.store.as_ref(), sub, &user_id, before).await?;
    let href = format!("/console/customers/{}", url(&user_id));
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Customer ")
        .el("code", "", &user_id)
        .raw("</h1>");
    let status = page
        .profile
        .as_ref()
        .map_or("normal", |p| p.customer.status.as_str());
    h.fmt(format_args!(
        "<span class=\"tag s-{status}\">{status}</span></div>"
    ));
    h.raw("<section><h2>Status</h2><div class=\"acts\">");
    for (value, text) in [
        ("trusted", "Trust"),
        ("blocked", "Block"),
        ("normal", "Normal"),
    ] {
        let extra = if value == status {
            "aria-pressed=\"true\""
        } else {
            "aria-pressed=\"false\""
        };
        h.post_button(
            &format!("{href}/status"),
            session.csrf(),
            &[("status", value), ("next", &href)],
            "",
            text,
            extra,
        );
    }
    h.raw("</div><p class=\"muted\">Rules read it as <code>customer.status</code>.</p></section>");
    if let Some(p) = &page.profile {
        let c = &p.customer;
        h.raw("<div class=\"cards\">");
        for (k, v) in [
            ("First seen", time(c.first_seen)),
            ("Last seen", time(c.last_seen)),
            ("Allowed", c.decisions_allow.to_string()),
            ("Reviewed", c.decisions_review.to_string()),
            ("Blocked", c.decisions_block.to_string()),
            ("Fraud labels", c.fraud_labels.to_string()),
        ] {
            h.raw("<div class=\"card\">")
                .el("div", "class=\"k\"", k)
                .el("div", "class=\"v\"", &v)
                .raw("</div>");
        }
        h.raw("</div><div class=\"two\"><section>");
        h.el("h2", "", &format!("Devices ({})", p.devices_total));
        h.raw("<ul class=\"plain\">");
        for d in &p.devices {
            h.raw("<li>").link(
                &format!("/console/decisions?device={}", url(&d.visitor_id)),
                &d.visitor_id,
            );
            h.el(
                "span",
                "class=\"muted\"",
                &format!(" {} → {}", time(d.first_seen), time(d.last_seen)),
            )
            .raw("</li>");
        }
        h.raw("</ul></section><section>");
        h.el("h2", "", &format!("Cards ({})", p.cards_total));
        h.raw("<ul class=\"plain\">");
        for card in &p.cards {
            let shown = format!("{}…{}", card.bin, card.last4);
            h.raw("<li>")
                .link(&format!("/console/decisions?card={}", url(&shown)), &shown);
            h.el(
                "span",
                "class=\"muted\"",
                &format!(" {} → {}", time(card.first_seen), time(card.last_seen)),
            )
            .raw("</li>");
        }
        h.raw("</ul></section></div>");
    }
    h.raw("<section><h2>Decisions</h2>");
    decision_table(&mut h, &page.decisions.items);
    let keep: Vec<(String, String)> = q.into_iter().collect();
    pager(&mut h, &page.decisions, &href, "before", &keep);
    h.raw("</section>");
    Ok(html(
        StatusCode::OK,
        layout("Customer", Some(&session), "/console/customers", &h.0),
    ))
}

pub async fn set_status(
    State(app): State<AppState>,
    session: Session,
    Path(user_id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let status = form
        .get("status")
        .cloned()
        .ok_or_else(|| PageError::Invalid("Pick a status.".into()))?;
    let mut map = Map::new();
    map.insert("status".into(), Value::String(status));
    customers::set_status(
        app.store.as_ref(),
        sub,
        &user_id,
        &map,
        &session.principal.actor(),
    )
    .await?;
    Ok(see_other(
        form.get("next").map(String::as_str),
        &format!("/console/customers/{}", url(&user_id)),
    ))
}
