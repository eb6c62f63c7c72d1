//! The decision search, one decision explained, and labelling it.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use serde_json::{Map, Value};

use super::super::auth::Session;
use super::super::charts::score_parts;
use super::super::html::{time, url, Html};
use super::super::{html, layout, pairs, query, see_other, PageError, PageResult};
use super::{action_tag, decision_table, label_tag, pager};
use crate::service::console_data;
use crate::state::AppState;

fn field(h: &mut Html, name: &str, label: &str, kind: &str, value: &str, extra: &str) {
    h.raw("<div class=\"f\">");
    h.fmt(format_args!("<label for=\"f-{name}\">{label}</label>"));
    h.fmt(format_args!(
        "<input id=\"f-{name}\" name=\"{name}\" type=\"{kind}\" {extra} value=\""
    ))
    .text(value)
    .raw("\"></div>");
}

fn select(h: &mut Html, name: &str, label: &str, options: &[&str], value: &str) {
    h.raw("<div class=\"f\">");
    h.fmt(format_args!("<label for=\"f-{name}\">{label}</label><select id=\"f-{name}\" name=\"{name}\"><option value=\"\">any</option>"));
    for o in options {
        let sel = if *o == value { " selected" } else { "" };
        h.fmt(format_args!("<option{sel}>{o}</option>"));
    }
    h.raw("</select></div>");
}

pub async fn list(
    State(app): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> PageResult {
    let sub = session.subscriber()?;
    let q = query(q);
    let v = |k: &str| q.get(k).map(String::as_str).unwrap_or_default();
    let mut h = Html::new();
    h.raw(
        "<h1>Decisions</h1><form method=\"get\" action=\"/console/decisions\" class=\"filters\">",
    );
    field(
        &mut h,
        "from",
        "From (UTC)",
        "datetime-local",
        v("from"),
        "",
    );
    field(&mut h, "to", "To (UTC)", "datetime-local", v("to"), "");
    select(
        &mut h,
        "action",
        "Action",
        &["allow", "review", "block"],
        v("action"),
    );
    select(
        &mut h,
        "level",
        "Level",
        &["low", "medium", "high"],
        v("level"),
    );
    select(
        &mut h,
        "label",
        "Label",
        &["fraud", "legit", "chargeback", "none"],
        v("label"),
    );
    field(&mut h, "rule", "Rule hit", "text", v("rule"), "");
    field(&mut h, "user", "User", "text", v("user"), "");
    field(
        &mut h,
        "card",
        "Card (BIN…last4)",
        "text",
        v("card"),
        "placeholder=\"411111…1111\"",
    );
    field(
        &mut h,
        "device",
        "Device (visitor id)",
        "text",
        v("device"),
        "",
    );
    field(&mut h, "ip", "IP", "text", v("ip"), "");
    field(
        &mut h,
        "email_domain",
        "Email domain",
        "text",
        v("email_domain"),
        "",
    );
    h.raw("<div class=\"f go\"><button type=\"submit\" class=\"primary\">Search</button> <a href=\"/console/decisions\">Clear</a></div></form>");
    let result = match console_data::search_filter(&q) {
        Ok(filter) => {
            let before = console_data::parse_cursor(q.get("before").map(String::as_str))?;
            Some((
                console_data::search(app.store.as_ref(), sub, &filter, before).await?,
                filter,
            ))
        }
        Err(crate::service::ServiceError::Invalid(m)) => {
            h.el("p", "class=\"error\" role=\"alert\"", &m);
            None
        }
        Err(other) => return Err(other.into()),
    };
    let status = if let Some((page, filter)) = result {
        if filter.reads_json() {
            h.el("p", "class=\"muted\"", "A search by rule alone looks at 12 hours at most; add a user, card, device, IP or email domain to search further back.");
        }
        decision_table(&mut h, &page.items);
        let keep: Vec<(String, String)> = q.into_iter().collect();
        pager(&mut h, &page, "/console/decisions", "before", &keep);
        StatusCode::OK
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok(html(
        status,
        layout("Decisions", Some(&session), "/console/decisions", &h.0),
    ))
}

/// A JSON object's scalar fields as a definition list (nested objects
/// skipped: they have their own sections).
fn kv(h: &mut Html, value: &Value, skip: &[&str]) {
    let Some(map) = value.as_object() else {
        h.el("p", "class=\"muted\"", "none");
        return;
    };
    h.raw("<dl class=\"kv\">");
    for (k, v) in map {
        if skip.contains(&k.as_str()) || v.is_object() {
            continue;
        }
        let text = match v {
            Value::String(s) => s.clone(),
            Value::Null => "—".to_owned(),
            other => other.to_string(),
        };
        h.el("dt", "", k).el("dd", "", &text);
    }
    h.raw("</dl>");
}

fn windows(h: &mut Html, velocity: &Value) {
    let Some(map) = velocity.as_object() else {
        h.el("p", "class=\"muted\"", "none");
        return;
    };
    h.raw("<table class=\"list\"><thead><tr><th scope=\"col\">Counter</th><th scope=\"col\">5 min</th><th scope=\"col\">1 h</th><th scope=\"col\">24 h</th></tr></thead><tbody>");
    for (k, v) in map {
        if let Some(w) = v.as_object() {
            for what in ["count", "amount"] {
                h.raw("<tr>")
                    .el("th", "scope=\"row\"", &format!("{k} {what}"));
                for win in ["5m", "1h", "24h"] {
                    let cell = w
                        .get(&format!("{what}_{win}"))
                        .map(Value::to_string)
                        .unwrap_or_else(|| "—".into());
                    h.el("td", "class=\"num\"", &cell);
                }
                h.raw("</tr>");
            }
        }
    }
    h.raw("</tbody></table>");
    kv(h, velocity, &[]);
}

pub async fn show(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    let sub = session.subscriber()?;
    let e = console_data::explain(app.scoring.decision(sub, &id).await?);
    let offer = super::lists::Offer::load(&app, sub).await?;
    let row = &e.detail.row;
    let csrf = session.csrf();
    let href = format!("/console/decisions/{}", url(&row.id));
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Decision ")
        .el("code", "", &row.id)
        .raw("</h1>");
    h.raw(&action_tag(&row.action))
        .raw(" ")
        .raw(&label_tag(row.label.map(|l| l.as_str())))
        .raw("</div>");
    h.el(
        "p",
        "class=\"muted\"",
        &format!(
            "{} UTC · request {} · rules v{} · scored in {:.1} ms",
            time(row.created_at),
            row.request_id,
            row.rules_version,
            row.duration_us as f64 / 1000.0
        ),
    );
    h.raw("<section><h2>Label</h2><div class=\"acts\">");
    for (label, class, key) in [
        ("legit", "ok", "a"),
        ("fraud", "bad", "d"),
        ("chargeback", "bad", "c"),
    ] {
        let extra = format!("data-key=\"{key}\"");
        h.post_button(
            &format!("{href}/label"),
            csrf,
            &[("label", label), ("next", &href)],
            class,
            &format!("Label {label}"),
            &extra,
        );
    }
    if let Some(user) = &row.user_id {
        let status_url = format!("/console/customers/{}/status", url(user));
        h.raw("<span class=\"sep\"></span>Customer ")
            .link(&format!("/console/customers/{}", url(user)), user)
            .raw(": ");
        for (status, text) in [
            ("trusted", "Trust"),
            ("blocked", "Block"),
            ("normal", "Normal"),
        ] {
            h.post_button(
                &status_url,
                csrf,
                &[("status", status), ("next", &href)],
                "",
                text,
                "",
            );
        }
    }
    h.raw("</div></section>");
    super::lists::decision_forms(
        &mut h,
        &offer,
        csrf,
        &row.id,
        &console_data::list_values(&e.input),
    );
    h.raw("<section><h2>Why this score</h2>");
    let mut parts = vec![("device risk".to_owned(), e.device_risk)];
    parts.extend(e.hits.iter().map(|(r, w, _)| (r.clone(), *w)));
    h.raw(&score_parts(&parts, None, None));
    h.raw("<table class=\"list breakdown\"><tbody><tr><th scope=\"row\">Device risk</th>");
    h.fmt(format_args!(
        "<td class=\"num\">{:.4}</td><td></td></tr>",
        e.device_risk
    ));
    for (rule, weight, action) in &e.hits {
        h.raw("<tr>").el("th", "scope=\"row\"", rule);
        h.fmt(format_args!("<td class=\"num\">{weight:+.4}</td><td>"));
        if let Some(a) = action {
            h.text("forces ").raw(&action_tag(a));
        }
        h.raw("</td></tr>");
    }
    let clamped = e.raw_sum.clamp(0.0, 1.0);
    h.fmt(format_args!(
        "<tr class=\"sum\"><th scope=\"row\">Sum</th><td class=\"num\">{:.4}</td><td>{}</td></tr>\
         <tr class=\"sum\"><th scope=\"row\">Score (clamped to 0–1)</th><td class=\"num\">{:.4}</td><td>level {} → {}</td></tr>",
        e.raw_sum,
        if (clamped - e.raw_sum).abs() > 1e-9 { "clamped" } else { "" },
        row.risk_score, crate::console::html::esc(&row.risk_level), crate::console::html::esc(&row.action)
    ));
    h.raw("</tbody></table>");
    if let Some(errors) = e.result["rule_errors"].as_array().filter(|a| !a.is_empty()) {
        h.el("h3", "", "Rules that could not run (counted as not hit)");
        h.raw("<ul>");
        for err in errors {
            h.el(
                "li",
                "",
                &format!(
                    "{}: {}",
                    err["rule"].as_str().unwrap_or("?"),
                    err["error"].as_str().unwrap_or("?")
                ),
            );
        }
        h.raw("</ul>");
    }
    h.raw("</section><div class=\"two\"><section><h2>Features the rules saw</h2>");
    kv(&mut h, &e.input, &["device", "velocity", "customer"]);
    h.raw("</section><section><h2>Device signals</h2>");
    kv(&mut h, &e.input["device"], &[]);
    h.raw("<h2>Customer before this decision</h2>");
    kv(&mut h, &e.input["customer"], &[]);
    h.raw("</section></div><section><h2>Velocity counters</h2>");
    windows(&mut h, &e.input["velocity"]);
    h.raw("</section><section><h2>Callback</h2>");
    match &row.callback_url {
        None => {
            h.el("p", "class=\"muted\"", "No callback was asked for.");
        }
        Some(cb) => {
            h.raw("<p>To ").el("code", "", cb).raw("</p>");
            if e.detail.attempts.is_empty() {
                h.el("p", "class=\"muted\"", "No attempt yet.");
            } else {
                h.raw("<table class=\"list\"><thead><tr><th scope=\"col\">#</th><th scope=\"col\">At (UTC)</th><th scope=\"col\">Status</th><th scope=\"col\">Took</th><th scope=\"col\">Error</th></tr></thead><tbody>");
                for a in &e.detail.attempts {
                    h.fmt(format_args!("<tr><td>{}</td>", a.attempt));
                    h.el("td", "", &time(a.at));
                    h.el(
                        "td",
                        "",
                        &a.status_code.map_or("—".to_owned(), |s| s.to_string()),
                    );
                    h.el("td", "class=\"num\"", &format!("{} ms", a.duration_ms));
                    h.el("td", "", a.error.as_deref().unwrap_or(""));
                    h.raw("</tr>");
                }
                h.raw("</tbody></table>");
            }
        }
    }
    h.raw("</section>");
    Ok(html(
        StatusCode::OK,
        layout("Decision", Some(&session), "/console/decisions", &h.0),
    ))
}

pub async fn label(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let mut map = Map::new();
    let label = form
        .get("label")
        .cloned()
        .ok_or_else(|| PageError::Invalid("Pick a label.".into()))?;
    map.insert("label".into(), Value::String(label));
    app.scoring
        .label(sub, &id, &map, &session.principal.actor())
        .await?;
    Ok(see_other(
        form.get("next").map(String::as_str),
        &format!("/console/decisions/{}", url(&id)),
    ))
}
