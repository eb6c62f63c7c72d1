//! Rules (the subscriber's console admins and the operator; analysts get a
//! `403`): the live and shadow versions and every version before them, a
//! version's rules with a diff against another, the draft editor, backtests,
//! the live and shadow rules' numbers, and publishing or rolling back. Every
//! handler here starts with `session.require_admin()?`.

mod backtest;
mod draft;
mod stats;
mod version;

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

use super::super::auth::Session;
use super::super::html::{esc, time, Html};
use super::super::{html, layout, PageError, PageResult};
use crate::clock::parse_rfc3339;
use crate::decision::rules::{default_rule_set, Rule, RuleSet};
use crate::service::rule_versions::{self, RuleChange, RuleVersionSummary};
use crate::service::{backtests, console};
use crate::state::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/rules", get(page))
        .route("/console/rules/draft", get(draft::form).post(draft::create))
        .route("/console/rules/validate", post(draft::validate))
        .route("/console/rules/versions/{v}", get(version::page))
        .route(
            "/console/rules/versions/{v}/publish",
            get(version::confirm_publish).post(version::publish),
        )
        .route("/console/rules/versions/{v}/shadow", post(version::shadow))
        .route("/console/rules/shadow/stop", post(version::stop_shadow))
        .route("/console/rules/backtests", post(backtest::start))
        .route("/console/rules/backtests/{id}", get(backtest::page))
        .route("/console/rules/stats", get(stats::page))
}

/// A rules page in the layout, the Rules entry current.
fn rules_page(session: &Session, status: StatusCode, title: &str, body: &str) -> Response {
    html(status, layout(title, Some(session), "/console/rules", body))
}

/// A version number from the path; anything else names no version.
fn version_number(text: &str) -> Result<i64, PageError> {
    text.parse::<i64>()
        .ok()
        .filter(|v| *v >= 0)
        .ok_or(PageError::NotFound)
}

fn version_href(v: i64) -> String {
    format!("/console/rules/versions/{v}")
}

fn status_tag(status: &str) -> String {
    format!("<span class=\"tag r-{0}\">{0}</span>", esc(status))
}

/// Who stored a version, by email when it was one of the console users.
struct Authors(HashMap<String, String>);

impl Authors {
    async fn of(app: &AppState, sub: &str) -> Result<Self, PageError> {
        let users = console::list_users(app.store.as_ref(), sub).await?;
        Ok(Self(
            users
                .users
                .into_iter()
                .map(|u| (format!("user:{}", u.id), u.email))
                .collect(),
        ))
    }

    fn name<'a>(&'a self, author: &'a str) -> &'a str {
        self.0.get(author).map_or(author, String::as_str)
    }
}

/// A version's rules, 0 being the default pack (never stored).
async fn rule_set_of(
    app: &AppState,
    sub: &str,
    version: i64,
) -> Result<(RuleSet, Option<RuleVersionSummary>), PageError> {
    if version == 0 {
        let pack = default_rule_set().map_err(|_| PageError::Internal)?;
        return Ok((pack.clone(), None));
    }
    let v = rule_versions::get_version(app.store.as_ref(), sub, version).await?;
    Ok((v.rule_set, Some(v.summary)))
}

/// `block (final)`, `review`, or a dash.
fn action_text(rule: &Rule) -> String {
    match (rule.action, rule.is_final) {
        (Some(a), true) => format!("{} (final)", a.as_str()),
        (Some(a), false) => a.as_str().to_owned(),
        (None, _) => "—".to_owned(),
    }
}

fn thresholds(h: &mut Html, set: &RuleSet) {
    h.el(
        "p",
        "class=\"muted\"",
        &format!(
            "Review from a score of {}, block from {}.",
            set.review_threshold, set.block_threshold
        ),
    );
}

/// The rules of a set, in order.
fn rules_table(h: &mut Html, set: &RuleSet) {
    if set.rules.is_empty() {
        h.el(
            "p",
            "class=\"empty\"",
            "No rules: every score is device risk alone.",
        );
        return;
    }
    h.raw(
        "<div class=\"scroll\"><table class=\"list rules\"><thead><tr><th scope=\"col\">Rule</th>\
         <th scope=\"col\">Expression</th><th scope=\"col\" class=\"num\">Weight</th>\
         <th scope=\"col\">Action</th><th scope=\"col\">Enabled</th></tr></thead><tbody>",
    );
    for r in &set.rules {
        let off = if r.enabled { "" } else { " class=\"off\"" };
        h.fmt(format_args!("<tr{off}><th scope=\"row\">"))
            .text(&r.name);
        if let Some(d) = &r.description {
            h.el("div", "class=\"muted small\"", d);
        }
        h.raw("</th>")
            .el("td", "class=\"mono\"", &r.expression)
            .el("td", "class=\"num\"", &r.weight.to_string())
            .el("td", "", &action_text(r))
            .el("td", "", if r.enabled { "yes" } else { "no" })
            .raw("</tr>");
    }
    h.raw("</tbody></table></div>");
}

/// One side of a changed rule: its fields, those that differ from `other`
/// marked.
fn rule_cell(h: &mut Html, rule: &Rule, other: Option<&Rule>) {
    let mark = |same: bool| if same { "" } else { " class=\"chg\"" };
    let o = other;
    h.raw("<dl class=\"kv\">");
    h.fmt(format_args!(
        "<dt>expression</dt><dd{}><code>",
        mark(o.is_none_or(|o| o.expression == rule.expression))
    ))
    .text(&rule.expression)
    .raw("</code></dd>");
    h.fmt(format_args!(
        "<dt>weight</dt><dd{}>{}</dd>",
        mark(o.is_none_or(|o| o.weight == rule.weight)),
        rule.weight
    ));
    h.fmt(format_args!(
        "<dt>action</dt><dd{}>",
        mark(o.is_none_or(|o| o.action == rule.action && o.is_final == rule.is_final))
    ))
    .text(&action_text(rule))
    .raw("</dd>");
    h.fmt(format_args!(
        "<dt>enabled</dt><dd{}>{}</dd>",
        mark(o.is_none_or(|o| o.enabled == rule.enabled)),
        if rule.enabled { "yes" } else { "no" }
    ));
    if o.is_some_and(|o| o.description != rule.description) {
        h.raw("<dt>description</dt><dd class=\"chg\">")
            .text(rule.description.as_deref().unwrap_or("—"))
            .raw("</dd>");
    }
    h.raw("</dl>");
}

/// `after` against `before`, by rule name, side by side.
fn diff_table(h: &mut Html, before: (&str, &RuleSet), after: (&str, &RuleSet)) {
    let (before_name, old) = before;
    let (after_name, new) = after;
    let changes = rule_versions::diff(old, new);
    let mut summary = Vec::new();
    if old.review_threshold != new.review_threshold || old.block_threshold != new.block_threshold {
        summary.push(format!(
            "thresholds: review {} → {}, block {} → {}",
            old.review_threshold, new.review_threshold, old.block_threshold, new.block_threshold
        ));
    }
    let count = |f: fn(&RuleChange<'_>) -> bool| changes.iter().filter(|c| f(c)).count();
    summary.push(format!(
        "{} added, {} removed, {} changed, {} the same",
        count(|c| matches!(c, RuleChange::Added(_))),
        count(|c| matches!(c, RuleChange::Removed(_))),
        count(|c| matches!(c, RuleChange::Changed(..))),
        new.rules.len() - count(|c| !matches!(c, RuleChange::Removed(_)))
    ));
    h.el("p", "class=\"diff-sum\"", &summary.join(" · "));
    if changes.is_empty() {
        return;
    }
    h.raw("<div class=\"scroll\"><table class=\"list diff\"><thead><tr><th scope=\"col\">Rule</th><th scope=\"col\">Change</th>");
    h.el("th", "scope=\"col\"", before_name)
        .el("th", "scope=\"col\"", after_name)
        .raw("</tr></thead><tbody>");
    for c in &changes {
        let (name, what, was, now) = match c {
            RuleChange::Added(r) => (&r.name, "added", None, Some(*r)),
            RuleChange::Removed(r) => (&r.name, "removed", Some(*r), None),
            RuleChange::Changed(a, b) => (&b.name, "changed", Some(*a), Some(*b)),
        };
        h.fmt(format_args!("<tr class=\"d-{what}\"><th scope=\"row\">"))
            .text(name)
            .raw("</th>")
            .fmt(format_args!(
                "<td><span class=\"tag d-{what}\">{what}</span></td><td>"
            ));
        match was {
            Some(r) => rule_cell(h, r, now),
            None => {
                h.el("span", "class=\"muted\"", "—");
            }
        }
        h.raw("</td><td>");
        match now {
            Some(r) => rule_cell(h, r, was),
            None => {
                h.el("span", "class=\"muted\"", "—");
            }
        }
        h.raw("</td></tr>");
    }
    h.raw("</tbody></table></div>");
}

/// The overview: the live version and the shadow with their rules, the
/// history of versions, the recent backtests.
pub async fn page(State(app): State<AppState>, session: Session) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let store = app.store.as_ref();
    let versions = rule_versions::list_versions(store, sub).await?.versions;
    let authors = Authors::of(&app, sub).await?;
    let live = versions.iter().find(|v| v.status.as_str() == "live");
    let shadow = versions.iter().find(|v| v.status.as_str() == "shadow");
    let csrf = session.csrf();
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>Rules</h1><div class=\"acts\">")
        .raw("<a class=\"button primary\" href=\"/console/rules/draft\">New draft</a>")
        .raw("<a class=\"button\" href=\"/console/rules/stats\">Live and shadow statistics</a>")
        .raw("</div></div>");

    h.raw("<section aria-labelledby=\"live\"><h2 id=\"live\">Live</h2>");
    let live_version = live.map_or(0, |v| v.version);
    let (live_set, _) = rule_set_of(&app, sub, live_version).await?;
    match live {
        Some(v) => {
            h.raw("<p>")
                .link(&version_href(v.version), &format!("Version {}", v.version));
            h.text(&format!(
                " decides since {} UTC (stored by {}).",
                v.published_at
                    .as_deref()
                    .and_then(parse_rfc3339)
                    .map_or_else(|| "—".to_owned(), time),
                authors.name(&v.author)
            ))
            .raw("</p>");
        }
        None => {
            h.el(
                "p",
                "",
                "No version published yet: the default rule pack (version 0) decides.",
            );
        }
    }
    h.raw("<p><a href=\"#live-rules\">Its rules</a> are listed below.</p></section>");

    h.raw("<section aria-labelledby=\"shadow\"><h2 id=\"shadow\">Shadow</h2>");
    match shadow {
        Some(v) => {
            h.raw("<div class=\"acts\"><p>")
                .link(&version_href(v.version), &format!("Version {}", v.version))
                .text(" runs beside the live version on every decision; it never acts.")
                .raw("</p>");
            h.post_button(
                "/console/rules/shadow/stop",
                csrf,
                &[],
                "",
                "Stop shadow",
                "",
            );
            h.raw("</div>");
            let (set, _) = rule_set_of(&app, sub, v.version).await?;
            h.raw("<details><summary>What it changes against the live version</summary>");
            diff_table(
                &mut h,
                (&format!("Live (v{live_version})"), &live_set),
                (&format!("Shadow (v{})", v.version), &set),
            );
            h.raw("</details>");
        }
        None => {
            h.el(
                "p",
                "class=\"muted\"",
                "No shadow runs. Start one from a version's page.",
            );
        }
    }
    h.raw("</section>");

    h.raw("<section aria-labelledby=\"versions\"><h2 id=\"versions\">Versions</h2>");
    if versions.is_empty() {
        h.el("p", "class=\"empty\"", "No version stored yet.");
    } else {
        h.raw(
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Version</th>\
             <th scope=\"col\">Status</th><th scope=\"col\">Author</th><th scope=\"col\">Created (UTC)</th>\
             <th scope=\"col\">Last published (UTC)</th><th scope=\"col\" class=\"num\">Rules</th>\
             <th scope=\"col\">Note</th></tr></thead><tbody>",
        );
        for v in &versions {
            let at = |t: Option<&str>| t.and_then(parse_rfc3339).map_or_else(|| "—".into(), time);
            h.raw("<tr><td>")
                .link(&version_href(v.version), &format!("v{}", v.version))
                .raw("</td><td>")
                .raw(&status_tag(v.status.as_str()))
                .raw("</td>")
                .el("td", "", authors.name(&v.author))
                .el("td", "", &at(Some(&v.created_at)))
                .el("td", "", &at(v.published_at.as_deref()))
                .el("td", "class=\"num\"", &v.rules_count.to_string())
                .el("td", "", v.note.as_deref().unwrap_or(""))
                .raw("</tr>");
        }
        h.raw("</tbody></table></div>");
    }
    h.raw("</section>");

    h.raw("<section aria-labelledby=\"backtests\"><h2 id=\"backtests\">Recent backtests</h2>");
    let recent = backtests::list(store, sub).await?.backtests;
    backtest::table(&mut h, &recent[..recent.len().min(10)]);
    h.raw("</section>");

    h.raw("<section aria-labelledby=\"live-rules\"><h2 id=\"live-rules\">")
        .text(&format!("Live rules (v{live_version})"))
        .raw("</h2>");
    thresholds(&mut h, &live_set);
    rules_table(&mut h, &live_set);
    h.raw("</section>");
    Ok(rules_page(&session, StatusCode::OK, "Rules", &h.0))
}
