//! The overview: decisions over time by action, the review share,
//! latency, top rules, the queue, providers and callbacks.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

use super::super::auth::Session;
use super::super::charts::{hbars, stacked_bars};
use super::super::html::{time, Html};
use super::super::{html, layout, query, PageResult};
use crate::service::console_data::{self, Range};
use crate::state::AppState;

fn ms(us: Option<i64>) -> String {
    us.map_or_else(
        || "—".to_owned(),
        |us| format!("{:.1} ms", us as f64 / 1000.0),
    )
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> PageResult {
    let sub = session.subscriber()?;
    let q = query(q);
    let range = Range::parse(q.get("range").map(String::as_str));
    let o = console_data::overview_cached(
        &app.overview_cache,
        app.store.as_ref(),
        &app.metrics,
        sub,
        range,
    )
    .await?;
    let total: i64 = o.totals.iter().sum();
    let share = if total > 0 {
        o.totals[1] as f64 * 100.0 / total as f64
    } else {
        0.0
    };
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Overview</h1><nav class=\"seg\" aria-label=\"Range\">");
    for r in [Range::Day, Range::Week] {
        let cur = if r == o.range {
            " aria-current=\"true\""
        } else {
            ""
        };
        h.fmt(format_args!(
            "<a href=\"/console/overview?range={0}\"{cur}>{0}</a>",
            r.as_str()
        ));
    }
    h.raw("</nav></div><div class=\"cards\">");
    let card = |h: &mut Html, label: &str, value: &str, href: Option<&str>| {
        h.raw("<div class=\"card\">")
            .el("div", "class=\"k\"", label);
        match href {
            Some(href) => {
                h.raw("<div class=\"v\">").link(href, value).raw("</div>");
            }
            None => {
                h.el("div", "class=\"v\"", value);
            }
        }
        h.raw("</div>");
    };
    card(
        &mut h,
        "Decisions",
        &total.to_string(),
        Some("/console/decisions"),
    );
    card(&mut h, "Sent to review", &format!("{share:.1}%"), None);
    card(
        &mut h,
        "Review queue",
        &o.queue_depth.to_string(),
        Some("/console/review"),
    );
    card(&mut h, "Scoring p50", &ms(o.p50_us), None);
    card(&mut h, "Scoring p99", &ms(o.p99_us), None);
    card(
        &mut h,
        "Callback backlog",
        &o.callback_backlog.to_string(),
        None,
    );
    h.raw(
        "</div><section><h2>Decisions by action</h2><p class=\"legend\">\
           <span class=\"sw a-allow\"></span>allow <span class=\"sw a-review\"></span>review \
           <span class=\"sw a-block\"></span>block</p>",
    );
    let day = o.range == Range::Day;
    h.raw(&stacked_bars(&o.buckets, |at| {
        let t = time(at);
        if day {
            t.get(11..16).unwrap_or(&t).to_owned()
        } else {
            t.get(5..13).unwrap_or(&t).to_owned()
        }
    }));
    h.raw("</section><div class=\"two\"><section><h2>Top rules hit</h2>");
    h.fmt(format_args!(
        "<p class=\"muted\">Among the latest {} decisions; latency percentiles over the same.</p>",
        o.sampled
    ));
    if o.top_rules.is_empty() {
        h.el("p", "class=\"empty\"", "No rule hit yet.");
    } else {
        h.raw(&hbars(&o.top_rules, "bar"));
    }
    h.raw("</section><section><h2>Providers</h2><ul class=\"providers\">");
    for p in &o.providers {
        let (class, state) = if p.circuit_open {
            ("bad", "circuit open")
        } else {
            ("ok", "circuit closed")
        };
        h.raw("<li>").el("strong", "", p.provider);
        h.fmt(format_args!(" <span class=\"tag {class}\">{state}</span> "));
        h.el(
            "span",
            "class=\"muted\"",
            &format!(
                "{} ready · {} retried · {} failed · {} held back",
                p.ready, p.retry, p.failed, p.held
            ),
        );
        h.raw("</li>");
    }
    h.raw(
        "</ul><p class=\"muted\">Calls made by this process since it started.</p></section></div>",
    );
    Ok(html(
        StatusCode::OK,
        layout("Overview", Some(&session), "/console/overview", &h.0),
    ))
}
