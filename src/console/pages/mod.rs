//! One module per console page; each reads through a service and renders
//! with [`Html`](super::html::Html).

pub mod account;
pub mod audit;
pub mod customers;
pub mod decisions;
pub mod lists;
pub mod overview;
pub mod review;
pub mod rules;
pub mod subscribers;
pub mod users;

use super::html::{esc, time, url, Html};
use crate::service::console_data::{DecisionSummary, Page};

/// The action as a coloured tag.
pub fn action_tag(action: &str) -> String {
    format!("<span class=\"tag a-{0}\">{0}</span>", esc(action))
}

pub fn label_tag(label: Option<&str>) -> String {
    match label {
        Some(l) => format!("<span class=\"tag l-{0}\">{0}</span>", esc(l)),
        None => "<span class=\"muted\">unlabelled</span>".to_owned(),
    }
}

/// The table of decisions the lists share.
pub fn decision_table(h: &mut Html, rows: &[DecisionSummary]) {
    if rows.is_empty() {
        h.el("p", "class=\"empty\"", "No decisions match.");
        return;
    }
    h.raw(
        "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Time (UTC)</th>\
           <th scope=\"col\">Action</th><th scope=\"col\">Score</th><th scope=\"col\">Amount</th>\
           <th scope=\"col\">Card</th><th scope=\"col\">Country</th><th scope=\"col\">User</th>\
           <th scope=\"col\">Top rules</th><th scope=\"col\">Label</th></tr></thead><tbody>",
    );
    for d in rows {
        h.raw("<tr><td>");
        h.link(
            &format!("/console/decisions/{}", url(&d.id)),
            &time(d.created_at),
        );
        h.raw("</td><td>").raw(&action_tag(&d.action)).raw("</td>");
        h.fmt(format_args!(
            "<td class=\"num\">{:.2}</td><td class=\"num\">",
            d.risk_score
        ));
        amount(h, d);
        h.raw("</td><td>")
            .text(d.card.as_deref().unwrap_or("—"))
            .raw("</td><td>");
        h.text(d.country.as_deref().unwrap_or("—")).raw("</td><td>");
        match &d.user_id {
            Some(u) => {
                h.link(&format!("/console/customers/{}", url(u)), u);
            }
            None => {
                h.text("—");
            }
        }
        h.raw("</td><td>");
        rules_list(h, d);
        h.raw("</td><td>")
            .raw(&label_tag(d.label))
            .raw("</td></tr>");
    }
    h.raw("</tbody></table></div>");
}

pub fn amount(h: &mut Html, d: &DecisionSummary) {
    match (&d.amount, &d.currency) {
        (Some(a), Some(c)) => h.text(&format!("{a} {c}")),
        (Some(a), None) => h.text(a),
        _ => h.text("—"),
    };
}

pub fn rules_list(h: &mut Html, d: &DecisionSummary) {
    if d.top_rules.is_empty() {
        h.el("span", "class=\"muted\"", "none");
    }
    for (i, (rule, weight)) in d.top_rules.iter().enumerate() {
        if i > 0 {
            h.raw(", ");
        }
        h.text(rule)
            .el("span", "class=\"muted\"", &format!(" +{weight}"));
    }
}

/// "Older →" / "Next page" links keeping the other query parameters.
pub fn pager<T>(h: &mut Html, page: &Page<T>, base: &str, key: &str, keep: &[(String, String)]) {
    if let Some(next) = &page.next {
        let mut q: Vec<String> = keep
            .iter()
            .filter(|(k, v)| k != key && k != "csrf" && !v.is_empty())
            .map(|(k, v)| format!("{}={}", url(k), url(v)))
            .collect();
        q.push(format!("{key}={}", url(next)));
        h.raw("<p class=\"pager\">");
        h.link(&format!("{base}?{}", q.join("&")), "Next page →");
        h.raw("</p>");
    }
}
