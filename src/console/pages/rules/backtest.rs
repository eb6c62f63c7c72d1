//! Backtests from the console: the form on a version's page, the page that
//! follows one while it runs (reloading itself) and shows, once done, the
//! candidate side by side with what the live rules did.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use super::super::super::auth::Session;
use super::super::super::html::{time, url, Html};
use super::super::super::{pairs, see_other, PageError, PageResult};
use super::super::action_tag;
use super::{rules_page, version_href};
use crate::clock::{parse_rfc3339, rfc3339};
use crate::decision::replay::{Confusion, RuleStats, SideResult};
use crate::service::backtests::{self, BacktestView, StatusView};
use crate::service::console_data::parse_time;
use crate::state::AppState;

const WEEK_MS: i64 = 7 * 24 * 3600 * 1000;
/// Seconds between reloads of a running backtest's page.
const RELOAD_S: &str = "2";

/// `2025-01-31T09:30`, what a `datetime-local` input shows (UTC here).
fn local(ms: i64) -> String {
    rfc3339(ms).get(..16).unwrap_or_default().to_owned()
}

fn status_text(s: StatusView) -> &'static str {
    match s {
        StatusView::Queued => "queued",
        StatusView::Running => "running",
        StatusView::Done => "done",
        StatusView::Failed => "failed",
    }
}

/// The form that starts a backtest of version `v` (default: the last 7 days).
pub fn form(h: &mut Html, csrf: &str, v: i64) {
    let now = crate::store::now_millis();
    h.raw("<form method=\"post\" action=\"/console/rules/backtests\" class=\"filters\">");
    h.hidden("csrf", csrf).hidden("version", &v.to_string());
    h.fmt(format_args!(
        "<div class=\"f\"><label for=\"bt-from\">From (UTC)</label>\
         <input id=\"bt-from\" name=\"from\" type=\"datetime-local\" required value=\"{}\"></div>\
         <div class=\"f\"><label for=\"bt-to\">To (UTC)</label>\
         <input id=\"bt-to\" name=\"to\" type=\"datetime-local\" required value=\"{}\"></div>",
        local(now - WEEK_MS),
        local(now)
    ));
    h.raw("<div class=\"f go\"><button type=\"submit\" class=\"primary\">Start backtest</button></div></form>");
    h.el(
        "p",
        "class=\"muted\"",
        "Replays the decisions of the window with this version's rules, each with what riskgate knew then, and compares the outcome with what the live rules did.",
    );
}

/// A list of backtests (the overview's recent ones).
pub fn table(h: &mut Html, list: &[BacktestView]) {
    if list.is_empty() {
        h.el(
            "p",
            "class=\"empty\"",
            "No backtest yet. Start one from a version's page.",
        );
        return;
    }
    h.raw(
        "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Backtest</th>\
         <th scope=\"col\">Version</th><th scope=\"col\">Window (UTC)</th><th scope=\"col\">Status</th>\
         <th scope=\"col\">Queued (UTC)</th></tr></thead><tbody>",
    );
    for b in list {
        h.raw("<tr><td>")
            .link(
                &format!("/console/rules/backtests/{}", url(&b.backtest_id)),
                &b.backtest_id,
            )
            .raw("</td><td>");
        match b.version {
            Some(v) => {
                h.link(&version_href(v), &format!("v{v}"));
            }
            None => {
                h.text("inline rules");
            }
        }
        h.raw("</td>")
            .el("td", "", &window(b))
            .fmt(format_args!(
                "<td><span class=\"tag b-{0}\">{0}</span></td>",
                status_text(b.status)
            ))
            .el("td", "", &at(&b.created_at))
            .raw("</tr>");
    }
    h.raw("</tbody></table></div>");
}

fn at(t: &str) -> String {
    parse_rfc3339(t).map_or_else(|| t.to_owned(), time)
}

fn window(b: &BacktestView) -> String {
    format!("{} → {}", at(&b.from), at(&b.to))
}

pub async fn start(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let field = |k: &str| form.get(k).map(|v| v.trim()).unwrap_or_default();
    let instant = |k: &str, what: &str| {
        parse_time(field(k)).map(rfc3339).ok_or_else(|| {
            PageError::Invalid(format!(
                "{what}: expected a date and time like 2025-01-31T09:30"
            ))
        })
    };
    let version: i64 = field("version")
        .parse()
        .map_err(|_| PageError::Invalid("Pick the version to backtest.".into()))?;
    let mut request = Map::new();
    request.insert("version".into(), Value::from(version));
    request.insert("from".into(), Value::String(instant("from", "From")?));
    request.insert("to".into(), Value::String(instant("to", "To")?));
    let queued = backtests::queue(
        app.store.as_ref(),
        sub,
        &request,
        &session.principal.actor(),
    )
    .await?;
    app.backtest_wake.notify_one();
    Ok(see_other(
        None,
        &format!("/console/rules/backtests/{}", url(&queued.backtest_id)),
    ))
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "—".to_owned(), |r| format!("{:.1} %", r * 100.0))
}

/// A row of two numbers, live and candidate, and their difference.
fn pair_row(h: &mut Html, what: &str, live: u64, cand: u64) {
    #[allow(clippy::cast_possible_wrap)]
    let delta = cand as i64 - live as i64;
    let delta = match delta {
        0 => "—".to_owned(),
        d if d > 0 => format!("+{d}"),
        d => d.to_string(),
    };
    h.raw("<tr>")
        .el("th", "scope=\"row\"", what)
        .el("td", "class=\"num\"", &live.to_string())
        .el("td", "class=\"num\"", &cand.to_string())
        .el("td", "class=\"num muted\"", &delta)
        .raw("</tr>");
}

fn text_row(h: &mut Html, what: &str, live: &str, cand: &str) {
    h.raw("<tr>")
        .el("th", "scope=\"row\"", what)
        .el("td", "class=\"num\"", live)
        .el("td", "class=\"num\"", cand)
        .raw("<td></td></tr>");
}

const SIDE_HEAD: &str = "<thead><tr><th scope=\"col\"></th><th scope=\"col\" class=\"num\">Live</th>\
     <th scope=\"col\" class=\"num\">Candidate</th><th scope=\"col\" class=\"num\">Change</th></tr></thead>";

fn confusion(h: &mut Html, title: &str, live: &Confusion, cand: &Confusion) {
    h.raw("<div><table class=\"list side\">");
    h.el("caption", "", title);
    h.raw(SIDE_HEAD).raw("<tbody>");
    pair_row(h, "Fraud caught (TP)", live.tp, cand.tp);
    pair_row(h, "Good flagged (FP)", live.fp, cand.fp);
    pair_row(h, "Good passed (TN)", live.tn, cand.tn);
    pair_row(h, "Fraud missed (FN)", live.fn_, cand.fn_);
    pair_row(
        h,
        "Unlabelled, positive",
        live.unlabelled_positive,
        cand.unlabelled_positive,
    );
    text_row(
        h,
        "Precision",
        &ratio(live.precision),
        &ratio(cand.precision),
    );
    text_row(h, "Recall", &ratio(live.recall), &ratio(cand.recall));
    h.raw("</tbody></table></div>");
}

fn money(map: &BTreeMap<String, f64>, currency: &str) -> String {
    map.get(currency)
        .map_or_else(|| "0.00".to_owned(), |a| format!("{a:.2}"))
}

fn amounts(h: &mut Html, live: &SideResult, cand: &SideResult) {
    let mut currencies: Vec<&String> = live
        .fraud_amount_caught
        .keys()
        .chain(live.good_amount_declined.keys())
        .chain(cand.fraud_amount_caught.keys())
        .chain(cand.good_amount_declined.keys())
        .collect();
    currencies.sort();
    currencies.dedup();
    h.raw("<table class=\"list side\"><caption>Amounts</caption>")
        .raw(SIDE_HEAD)
        .raw("<tbody>");
    if currencies.is_empty() {
        h.raw("<tr><td colspan=\"4\" class=\"muted\">No labelled amount in the window.</td></tr>");
    }
    for c in currencies {
        text_row(
            h,
            &format!("Fraud caught, {c}"),
            &money(&live.fraud_amount_caught, c),
            &money(&cand.fraud_amount_caught, c),
        );
        text_row(
            h,
            &format!("Good declined, {c}"),
            &money(&live.good_amount_declined, c),
            &money(&cand.good_amount_declined, c),
        );
    }
    h.raw("</tbody></table>");
}

fn rule_table(h: &mut Html, title: &str, rules: &[RuleStats]) {
    h.raw("<div><table class=\"list\">");
    h.el("caption", "", title);
    h.raw("<thead><tr><th scope=\"col\">Rule</th><th scope=\"col\" class=\"num\">Hits</th>\
           <th scope=\"col\" class=\"num\">Labelled hits</th><th scope=\"col\" class=\"num\">Precision</th>\
           <th scope=\"col\" class=\"num\">Errors</th></tr></thead><tbody>");
    if rules.is_empty() {
        h.raw("<tr><td colspan=\"5\" class=\"muted\">No rule hit.</td></tr>");
    }
    for r in rules {
        h.raw("<tr>")
            .el("th", "scope=\"row\"", &r.rule)
            .el("td", "class=\"num\"", &r.hits.to_string())
            .el("td", "class=\"num\"", &r.labelled_hits.to_string())
            .el("td", "class=\"num\"", &ratio(r.precision))
            .el("td", "class=\"num\"", &r.errors.to_string())
            .raw("</tr>");
    }
    h.raw("</tbody></table></div>");
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    Path(id): Path<String>,
) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let b = backtests::get(app.store.as_ref(), sub, &id).await?;
    let status = status_text(b.status);
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Backtest <code>")
        .text(&b.backtest_id)
        .raw("</code></h1>")
        .fmt(format_args!(
            "<span class=\"tag b-{status}\">{status}</span></div>"
        ));
    h.raw("<p class=\"muted\">");
    match b.version {
        Some(v) => {
            h.text("Candidate: ")
                .link(&version_href(v), &format!("version {v}"));
        }
        None => {
            h.text("Candidate: a rule set given inline");
        }
    }
    h.text(&format!(
        " · decisions from {} to {} UTC · queued {}",
        at(&b.from),
        at(&b.to),
        at(&b.created_at)
    ));
    if let Some(f) = &b.finished_at {
        h.text(&format!(" · finished {}", at(f)));
    }
    h.raw("</p>");
    let running = matches!(b.status, StatusView::Queued | StatusView::Running);
    if running {
        let (done, total) = (b.progress.done, b.progress.total);
        h.raw("<section class=\"progress\" aria-live=\"polite\">")
            .fmt(format_args!(
                "<progress max=\"{}\" value=\"{}\"></progress> ",
                total.max(1),
                done
            ))
            .text(&if total > 0 {
                format!("{done} of {total} decisions replayed")
            } else {
                "Waiting to start…".to_owned()
            })
            .raw("</section>");
        h.el(
            "p",
            "class=\"muted\"",
            "This page reloads itself every 2 seconds until the backtest is done.",
        );
    }
    if let Some(e) = &b.error {
        h.el("p", "class=\"error\" role=\"alert\"", e);
    }
    if let Some(r) = &b.result {
        h.raw("<div class=\"cards\">");
        for (k, v) in [
            ("Decisions replayed", r.decisions.to_string()),
            ("Labelled fraud", r.labels.fraud.to_string()),
            ("Labelled good", r.labels.good.to_string()),
            ("Unlabelled", r.labels.unlabelled.to_string()),
            ("Actions changed", r.changed.count.to_string()),
        ] {
            h.raw("<div class=\"card\">")
                .el("div", "class=\"k\"", k)
                .el("div", "class=\"v\"", &v)
                .raw("</div>");
        }
        h.raw("</div>");
        if r.skipped > 0 {
            h.el(
                "p",
                "class=\"muted\"",
                &format!(
                    "{} stored decisions did not read back and were skipped.",
                    r.skipped
                ),
            );
        }
        let (live, cand) = (&r.live, &r.candidate);
        h.raw("<section aria-labelledby=\"vs\"><h2 id=\"vs\">Live and candidate, side by side</h2><div class=\"two\">");
        h.raw("<div><table class=\"list side\"><caption>Actions</caption>")
            .raw(SIDE_HEAD)
            .raw("<tbody>");
        pair_row(&mut h, "allow", live.actions.allow, cand.actions.allow);
        pair_row(&mut h, "review", live.actions.review, cand.actions.review);
        pair_row(&mut h, "block", live.actions.block, cand.actions.block);
        h.raw("</tbody></table>");
        h.raw("</div><div>");
        amounts(&mut h, live, cand);
        h.raw("</div></div><div class=\"two\">");
        confusion(
            &mut h,
            "Flagged (review or block) against the labels",
            &live.flagged,
            &cand.flagged,
        );
        confusion(
            &mut h,
            "Blocked against the labels",
            &live.blocked,
            &cand.blocked,
        );
        h.raw("</div></section>");
        h.raw("<section aria-labelledby=\"per-rule\"><h2 id=\"per-rule\">Per rule</h2><div class=\"two\">");
        rule_table(&mut h, "Live (rules that hit)", &live.rules);
        rule_table(&mut h, "Candidate", &cand.rules);
        h.raw("</div></section>");
        h.raw("<section aria-labelledby=\"changed\"><h2 id=\"changed\">Changed decisions</h2>");
        if r.changed.sample.is_empty() {
            h.el(
                "p",
                "class=\"empty\"",
                "The candidate decides every decision as live did.",
            );
        } else {
            h.el(
                "p",
                "class=\"muted\"",
                &format!(
                    "{} decisions change action; the first {} in the order they were made:",
                    r.changed.count,
                    r.changed.sample.len()
                ),
            );
            h.raw(
                "<table class=\"list changed\"><thead><tr><th scope=\"col\">Decision</th>\
                   <th scope=\"col\">Live</th><th scope=\"col\">Candidate</th></tr></thead><tbody>",
            );
            for c in &r.changed.sample {
                h.raw("<tr><td>")
                    .link(
                        &format!("/console/decisions/{}", url(&c.decision_id)),
                        &c.decision_id,
                    )
                    .raw("</td><td>")
                    .raw(&action_tag(c.live.as_str()))
                    .raw("</td><td>")
                    .raw(&action_tag(c.candidate.as_str()))
                    .raw("</td></tr>");
            }
            h.raw("</tbody></table>");
        }
        h.raw("</section>");
    }
    let mut response = rules_page(&session, StatusCode::OK, "Backtest", &h.0);
    if running {
        // A plain reload (the `Refresh` header): no script needed to follow it.
        response
            .headers_mut()
            .insert(header::REFRESH, HeaderValue::from_static(RELOAD_S));
    }
    Ok(response)
}
