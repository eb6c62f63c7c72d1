//! One version: its rules and a diff against another, and what can be done
//! with it (backtest, shadow, publish or roll back, edit as a new draft).

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};

use super::super::super::auth::Session;
use super::super::super::html::{time, Html};
use super::super::super::{pairs, query, see_other, PageError, PageResult};
use super::{
    backtest, diff_table, rule_set_of, rules_page, rules_table, status_tag, thresholds,
    version_href, version_number, Authors,
};
use crate::clock::parse_rfc3339;
use crate::service::rule_versions::{self, RuleVersionSummary};
use crate::state::AppState;

fn when(t: Option<&str>) -> String {
    t.and_then(parse_rfc3339)
        .map_or_else(|| "—".to_owned(), |ms| format!("{} UTC", time(ms)))
}

fn name(v: i64) -> String {
    if v == 0 {
        "the default pack (v0)".to_owned()
    } else {
        format!("v{v}")
    }
}

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    Path(v): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let v = version_number(&v)?;
    let (set, summary) = rule_set_of(&app, sub, v).await?;
    let versions = rule_versions::list_versions(app.store.as_ref(), sub)
        .await?
        .versions;
    let authors = Authors::of(&app, sub).await?;
    let live = versions
        .iter()
        .find(|s| s.status.as_str() == "live")
        .map_or(0, |s| s.version);
    let status = summary
        .as_ref()
        .map_or(if live == 0 { "live" } else { "retired" }, |s| {
            s.status.as_str()
        });
    let q = query(q);
    let against = match q.get("against").filter(|a| !a.is_empty()) {
        Some(a) => version_number(a)
            .map_err(|_| PageError::Invalid("Pick a version to compare with.".into()))?,
        None if status != "live" => live,
        // The live version against the one it replaced.
        None => versions
            .iter()
            .filter(|s| s.status.as_str() == "retired" && s.version < v)
            .map(|s| s.version)
            .max()
            .unwrap_or(0),
    };
    let csrf = session.csrf();
    let href = version_href(v);
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>")
        .text(&if v == 0 {
            "Default rule pack (v0)".to_owned()
        } else {
            format!("Version {v}")
        })
        .raw("</h1>")
        .raw(&status_tag(status))
        .raw("</div>");
    if let Some(s) = &summary {
        meta(&mut h, s, &authors);
    } else {
        h.el(
            "p",
            "class=\"muted\"",
            "Shipped with riskgate; it decides until a version is published.",
        );
    }

    h.raw("<section aria-labelledby=\"do\"><h2 id=\"do\">Actions</h2><div class=\"acts\">");
    match status {
        "draft" | "shadow" if v > 0 => {
            h.raw("<a class=\"button primary\" href=\"")
                .text(&format!("{href}/publish"))
                .raw("\">Publish…</a>");
        }
        "retired" if v > 0 => {
            h.raw("<a class=\"button primary\" href=\"")
                .text(&format!("{href}/publish"))
                .raw("\">Roll back to this version…</a>");
        }
        _ => {}
    }
    match status {
        "shadow" => {
            h.post_button(
                "/console/rules/shadow/stop",
                csrf,
                &[("next", &href)],
                "",
                "Stop shadow",
                "",
            );
        }
        "draft" | "retired" if v > 0 => {
            h.post_button(
                &format!("{href}/shadow"),
                csrf,
                &[],
                "",
                "Run as shadow",
                "",
            );
        }
        _ => {}
    }
    h.raw("<a class=\"button\" href=\"")
        .text(&format!("/console/rules/draft?from={v}"))
        .raw("\">Edit as a new draft</a></div>");
    if status == "live" {
        h.el(
            "p",
            "class=\"muted\"",
            "This version decides. To change it, edit it as a new draft, backtest the draft and publish it.",
        );
    }
    h.raw("</section>");

    if status != "live" {
        h.raw("<section aria-labelledby=\"bt\"><h2 id=\"bt\">Backtest</h2>");
        backtest::form(&mut h, csrf, v);
        h.raw("</section>");
    }

    h.raw("<section aria-labelledby=\"diff\"><h2 id=\"diff\">Compared with another version</h2>");
    h.raw("<form method=\"get\" class=\"filters\" action=\"")
        .text(&href)
        .raw("\"><div class=\"f\"><label for=\"against\">Compare with</label><select id=\"against\" name=\"against\">");
    let mut options: Vec<(i64, String)> = versions
        .iter()
        .filter(|s| s.version != v)
        .map(|s| (s.version, format!("v{} ({})", s.version, s.status.as_str())))
        .collect();
    if v != 0 {
        options.push((0, "v0 (the default pack)".into()));
    }
    for (n, text) in &options {
        let sel = if *n == against { " selected" } else { "" };
        h.fmt(format_args!("<option value=\"{n}\"{sel}>"))
            .text(text)
            .raw("</option>");
    }
    h.raw(
        "</select></div><div class=\"f go\"><button type=\"submit\">Compare</button></div></form>",
    );
    if against == v {
        h.el("p", "class=\"muted\"", "This is the version itself.");
    } else {
        let (other, _) = rule_set_of(&app, sub, against).await?;
        h.raw("<p>Changes from ")
            .text(&name(against))
            .raw(" to ")
            .text(&name(v))
            .raw(":</p>");
        diff_table(&mut h, (&name(against), &other), (&name(v), &set));
    }
    h.raw("</section>");
    h.raw("<section aria-labelledby=\"rules\"><h2 id=\"rules\">Rules</h2>");
    thresholds(&mut h, &set);
    rules_table(&mut h, &set);
    h.raw("</section>");

    let title = format!("Rules v{v}");
    Ok(rules_page(&session, StatusCode::OK, &title, &h.0))
}

fn meta(h: &mut Html, s: &RuleVersionSummary, authors: &Authors) {
    h.raw("<dl class=\"kv meta\">")
        .el("dt", "", "Author")
        .el("dd", "", authors.name(&s.author))
        .el("dt", "", "Created")
        .el("dd", "", &when(Some(&s.created_at)))
        .el("dt", "", "Last published")
        .el("dd", "", &when(s.published_at.as_deref()))
        .el("dt", "", "Rules")
        .el("dd", "", &s.rules_count.to_string());
    if let Some(note) = &s.note {
        h.el("dt", "", "Note").el("dd", "", note);
    }
    h.raw("</dl>");
}

/// The confirmation step: what publishing changes, and the button.
pub async fn confirm_publish(
    State(app): State<AppState>,
    session: Session,
    Path(v): Path<String>,
) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let v = version_number(&v)?;
    let (set, summary) = rule_set_of(&app, sub, v).await?;
    let summary = summary.ok_or(PageError::NotFound)?;
    let versions = rule_versions::list_versions(app.store.as_ref(), sub)
        .await?
        .versions;
    let live = versions
        .iter()
        .find(|s| s.status.as_str() == "live")
        .map_or(0, |s| s.version);
    let href = version_href(v);
    let rollback = summary.status.as_str() == "retired";
    let mut h = Html::new();
    let title = if rollback {
        format!("Roll back to version {v}?")
    } else {
        format!("Publish version {v}?")
    };
    h.el("h1", "", &title);
    if summary.status.as_str() == "live" {
        h.el("p", "", "This version is already live.");
        h.raw("<p>").link(&href, "Back to the version").raw("</p>");
        return Ok(rules_page(&session, StatusCode::OK, &title, &h.0));
    }
    h.raw("<p class=\"confirm\">")
        .text(&format!(
            "Version {v} will decide every transaction from the next request on, and {} will be retired.",
            if live == 0 { "the default pack".to_owned() } else { format!("version {live}") }
        ));
    if summary.status.as_str() == "shadow" {
        h.text(" It stops being the shadow.");
    }
    if live > 0 {
        h.text(&format!(
            " To undo it, publish version {live} again (a rollback)."
        ));
    }
    h.raw("</p><div class=\"acts\">");
    h.post_button(
        &format!("{href}/publish"),
        session.csrf(),
        &[],
        "primary",
        &if rollback {
            format!("Yes, roll back to version {v}")
        } else {
            format!("Yes, publish version {v}")
        },
        "",
    );
    h.link(&href, "Cancel").raw("</div>");
    let (current, _) = rule_set_of(&app, sub, live).await?;
    h.el(
        "h2",
        "",
        &format!("What changes against the live version (v{live})"),
    );
    diff_table(
        &mut h,
        (&format!("Live (v{live})"), &current),
        (&format!("v{v}"), &set),
    );
    Ok(rules_page(&session, StatusCode::OK, &title, &h.0))
}

pub async fn publish(
    State(app): State<AppState>,
    session: Session,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let v = version_number(&v)?;
    let done = rule_versions::publish(app.store.as_ref(), sub, v, &session.principal.actor()).await;
    // Forgotten either way: a failed commit may still have happened.
    app.scoring.rulebook.invalidate(sub);
    done?;
    Ok(see_other(None, &version_href(v)))
}

pub async fn shadow(
    State(app): State<AppState>,
    session: Session,
    Path(v): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let v = version_number(&v)?;
    let done =
        rule_versions::start_shadow(app.store.as_ref(), sub, v, &session.principal.actor()).await;
    app.scoring.rulebook.invalidate(sub);
    done?;
    Ok(see_other(
        form.get("next").map(String::as_str),
        "/console/rules",
    ))
}

pub async fn stop_shadow(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let done =
        rule_versions::stop_shadow(app.store.as_ref(), sub, &session.principal.actor()).await;
    app.scoring.rulebook.invalidate(sub);
    done?;
    Ok(see_other(
        form.get("next").map(String::as_str),
        "/console/rules",
    ))
}
