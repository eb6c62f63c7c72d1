//! The subscriber's audit log, newest first.

use axum::extract::{RawQuery, State};
use axum::http::StatusCode;

use super::super::auth::Session;
use super::super::html::Html;
use super::super::{html, layout, query, PageResult};
use crate::service::audit;
use crate::state::AppState;

pub async fn page(
    State(app): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> PageResult {
    let sub = session.subscriber()?;
    let q = query(q);
    let cursor = audit::parse_cursor(
        q.get("before")
            .map(String::as_str)
            .filter(|c| !c.is_empty()),
    )?;
    let page = audit::audit_log(app.store.as_ref(), sub, audit::DEFAULT_LIMIT, cursor).await?;
    let mut h = Html::new();
    h.raw("<h1>Audit log</h1>");
    if page.entries.is_empty() {
        h.el("p", "class=\"empty\"", "No change recorded yet.");
    } else {
        h.raw("<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Time (UTC)</th><th scope=\"col\">Actor</th>\
               <th scope=\"col\">Action</th><th scope=\"col\">Target</th><th scope=\"col\">Summary</th></tr></thead><tbody>");
        for e in &page.entries {
            h.raw("<tr>");
            h.el(
                "td",
                "",
                &e.time.get(..19).unwrap_or(&e.time).replace('T', " "),
            );
            h.el("td", "", &e.actor).el("td", "", &e.action);
            h.raw("<td>");
            match e.target.strip_prefix("decisions/") {
                Some(id) => {
                    h.link(
                        &format!("/console/decisions/{}", super::super::html::url(id)),
                        &e.target,
                    );
                }
                None => {
                    h.text(&e.target);
                }
            }
            h.raw("</td>")
                .el("td", "class=\"mono\"", &e.summary.to_string())
                .raw("</tr>");
        }
        h.raw("</tbody></table></div>");
    }
    if let Some(next) = &page.next_cursor {
        h.raw("<p class=\"pager\">")
            .link(
                &format!("/console/audit?before={}", super::super::html::url(next)),
                "Older →",
            )
            .raw("</p>");
    }
    Ok(html(
        StatusCode::OK,
        layout("Audit log", Some(&session), "/console/audit", &h.0),
    ))
}
