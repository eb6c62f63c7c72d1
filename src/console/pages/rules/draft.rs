//! The draft editor: one small form per rule (name, expression, weight,
//! action, final, enabled, description) rather than one JSON document, so an
//! analyst never fights JSON syntax and each rule's error sits next to it.
//! It starts from the live rule set (or `?from=` a version). The script
//! checks the rules as they are typed through `POST /console/rules/validate`;
//! without script, saving checks them the same way and shows the form again
//! with the errors and the text kept.

use std::collections::HashMap;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{Map, Number, Value};

use super::super::super::auth::Session;
use super::super::super::html::Html;
use super::super::super::{harden, pairs, query, see_other, PageError, PageResult};
use super::{rule_set_of, rules_page, version_href, version_number};
use crate::decision::rules::{Rule, RuleSet, MAX_RULES};
use crate::service::rule_versions::{self, RuleSetCheck};
use crate::service::ServiceError;
use crate::state::AppState;

/// Empty rows offered for new rules.
const BLANK_ROWS: usize = 2;

/// One rule as the form holds it: text, as typed.
#[derive(Debug, Clone, Default)]
struct Row {
    name: String,
    expression: String,
    weight: String,
    action: String,
    is_final: bool,
    enabled: bool,
    description: String,
    remove: bool,
}

impl Row {
    fn blank() -> Self {
        Self {
            enabled: true,
            ..Self::default()
        }
    }

    fn of(rule: &Rule) -> Self {
        Self {
            name: rule.name.clone(),
            expression: rule.expression.clone(),
            weight: rule.weight.to_string(),
            action: rule
                .action
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
            is_final: rule.is_final,
            enabled: rule.enabled,
            description: rule.description.clone().unwrap_or_default(),
            remove: false,
        }
    }

    /// Left out of the rule set: removed, or never filled in.
    fn skipped(&self) -> bool {
        self.remove || (self.name.trim().is_empty() && self.expression.trim().is_empty())
    }

    fn json(&self) -> Value {
        let mut rule = Map::new();
        let text = |s: &str| (!s.trim().is_empty()).then(|| Value::String(s.trim().to_owned()));
        if let Some(v) = text(&self.name) {
            rule.insert("name".into(), v);
        }
        if let Some(v) = text(&self.expression) {
            rule.insert("expression".into(), v);
        }
        if let Some(v) = number(&self.weight) {
            rule.insert("weight".into(), v);
        }
        if let Some(v) = text(&self.action) {
            rule.insert("action".into(), v);
        }
        if self.is_final {
            rule.insert("final".into(), Value::Bool(true));
        }
        if let Some(v) = text(&self.description) {
            rule.insert("description".into(), v);
        }
        rule.insert("enabled".into(), Value::Bool(self.enabled));
        Value::Object(rule)
    }
}

/// A number as typed; text that is not one is passed on as text, so the
/// rule set's own check names the field.
fn number(text: &str) -> Option<Value> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    Some(
        t.parse::<f64>()
            .ok()
            .and_then(Number::from_f64)
            .map_or_else(|| Value::String(t.to_owned()), Value::Number),
    )
}

/// The whole form as typed.
#[derive(Debug, Clone, Default)]
struct Editor {
    note: String,
    review_threshold: String,
    block_threshold: String,
    rows: Vec<Row>,
    /// The version it started from, for the page's heading.
    base: Option<i64>,
}

impl Editor {
    fn of(set: &RuleSet, base: i64) -> Self {
        let mut rows: Vec<Row> = set.rules.iter().map(Row::of).collect();
        rows.extend(std::iter::repeat_with(Row::blank).take(BLANK_ROWS));
        Self {
            note: String::new(),
            review_threshold: set.review_threshold.to_string(),
            block_threshold: set.block_threshold.to_string(),
            rows,
            base: Some(base),
        }
    }

    fn from_form(form: &HashMap<String, String>) -> Self {
        let field = |k: &str| form.get(k).cloned().unwrap_or_default();
        let count = field("rows")
            .parse::<usize>()
            .unwrap_or(0)
            .min(MAX_RULES + 50);
        let rows = (0..count)
            .map(|i| {
                let f = |k: &str| field(&format!("r{i}_{k}"));
                Row {
                    name: f("name"),
                    expression: f("expression"),
                    weight: f("weight"),
                    action: f("action"),
                    is_final: form.contains_key(&format!("r{i}_final")),
                    enabled: form.contains_key(&format!("r{i}_enabled")),
                    description: f("description"),
                    remove: form.contains_key(&format!("r{i}_remove")),
                }
            })
            .collect();
        Self {
            note: field("note"),
            review_threshold: field("review_threshold"),
            block_threshold: field("block_threshold"),
            rows,
            base: field("base").parse().ok(),
        }
    }

    /// The rule-set body, and the form row of each of its rules.
    fn body(&self) -> (Map<String, Value>, Vec<usize>) {
        let mut body = Map::new();
        if let Some(v) = number(&self.review_threshold) {
            body.insert("review_threshold".into(), v);
        }
        if let Some(v) = number(&self.block_threshold) {
            body.insert("block_threshold".into(), v);
        }
        if !self.note.trim().is_empty() {
            body.insert("note".into(), Value::String(self.note.trim().to_owned()));
        }
        let (mut rules, mut rows) = (Vec::new(), Vec::new());
        for (i, row) in self.rows.iter().enumerate() {
            if !row.skipped() {
                rules.push(row.json());
                rows.push(i);
            }
        }
        body.insert("rules".into(), Value::Array(rules));
        (body, rows)
    }
}

/// Errors and warnings by form row, and the set's own.
#[derive(Default)]
struct Found {
    set: Vec<String>,
    rows: HashMap<usize, (Vec<String>, Vec<String>)>,
}

impl Found {
    fn of(check: RuleSetCheck, rows: &[usize]) -> Self {
        Self {
            set: check.errors,
            rows: rows
                .iter()
                .zip(check.rules)
                .map(|(row, c)| (*row, (c.errors, c.warnings)))
                .collect(),
        }
    }
}

fn input(h: &mut Html, id: &str, label: &str, attrs: &str, value: &str) {
    h.fmt(format_args!(
        "<div class=\"f\"><label for=\"{id}\">{label}</label><input id=\"{id}\" name=\"{id}\" {attrs} value=\""
    ))
    .text(value)
    .raw("\"></div>");
}

fn check(h: &mut Html, id: &str, label: &str, on: bool) {
    let checked = if on { " checked" } else { "" };
    h.fmt(format_args!(
        "<div class=\"f chk\"><input type=\"checkbox\" id=\"{id}\" name=\"{id}\"{checked}><label for=\"{id}\">{label}</label></div>"
    ));
}

fn messages(h: &mut Html, class: &str, id: &str, list: &[String]) {
    let hidden = if list.is_empty() { " hidden" } else { "" };
    h.fmt(format_args!(
        "<p class=\"{class}\" id=\"{id}\" aria-live=\"polite\"{hidden}>"
    ))
    .text(&list.join(" · "))
    .raw("</p>");
}

fn editor_page(
    session: &Session,
    status: StatusCode,
    editor: &Editor,
    found: &Found,
) -> PageResult {
    let mut h = Html::new();
    h.raw("<h1>New draft</h1>");
    h.el(
        "p",
        "class=\"muted\"",
        &match editor.base {
            Some(0) => "Starting from the default rule pack (v0). Saving stores a draft: it acts on nothing until it is published or run as the shadow.".to_owned(),
            Some(v) => format!("Starting from version {v}. Saving stores a draft: it acts on nothing until it is published or run as the shadow."),
            None => "Saving stores a draft: it acts on nothing until it is published or run as the shadow.".to_owned(),
        },
    );
    h.raw("<form method=\"post\" action=\"/console/rules/draft\" class=\"draft\" data-validate=\"/console/rules/validate\" novalidate>");
    h.hidden("csrf", session.csrf())
        .hidden("rows", &editor.rows.len().to_string());
    if let Some(b) = editor.base {
        h.hidden("base", &b.to_string());
    }
    let bad = !found.set.is_empty() || found.rows.values().any(|(e, _)| !e.is_empty());
    if bad && status != StatusCode::OK {
        h.el(
            "p",
            "class=\"error\" role=\"alert\"",
            "The draft was not saved: fix the rules marked below.",
        );
    }
    messages(&mut h, "error set-errors", "set-errors", &found.set);
    h.raw("<div class=\"filters\">");
    input(
        &mut h,
        "note",
        "Note (what this draft changes)",
        "type=\"text\" maxlength=\"1024\"",
        &editor.note,
    );
    input(
        &mut h,
        "review_threshold",
        "Review from score",
        "type=\"text\" inputmode=\"decimal\"",
        &editor.review_threshold,
    );
    input(
        &mut h,
        "block_threshold",
        "Block from score",
        "type=\"text\" inputmode=\"decimal\"",
        &editor.block_threshold,
    );
    h.raw("</div>");
    h.el(
        "p",
        "class=\"muted\"",
        "Each rule is a boolean expression over the scoring features (see docs/features-and-rules.md). A rule that hits adds its weight (−1 to 1) to the score and may force an action. Leave a row empty to add nothing; tick Remove to drop a rule.",
    );
    let empty = (Vec::new(), Vec::new());
    for (i, row) in editor.rows.iter().enumerate() {
        let (errors, warnings) = found.rows.get(&i).unwrap_or(&empty);
        let cls = if errors.is_empty() {
            "rule"
        } else {
            "rule bad"
        };
        h.fmt(format_args!(
            "<fieldset class=\"{cls}\" data-row=\"{i}\"><legend>"
        ));
        if row.name.is_empty() {
            h.text(&format!("Rule {}", i + 1));
        } else {
            h.text(&row.name);
        }
        h.raw("</legend><div class=\"rule-grid\">");
        input(
            &mut h,
            &format!("r{i}_name"),
            "Name",
            "type=\"text\" maxlength=\"128\"",
            &row.name,
        );
        input(
            &mut h,
            &format!("r{i}_weight"),
            "Weight",
            "type=\"text\" inputmode=\"decimal\"",
            &row.weight,
        );
        h.fmt(format_args!(
            "<div class=\"f\"><label for=\"r{i}_action\">Forces action</label><select id=\"r{i}_action\" name=\"r{i}_action\">"
        ));
        for (value, text) in [
            ("", "none"),
            ("allow", "allow"),
            ("review", "review"),
            ("block", "block"),
        ] {
            let sel = if row.action == value { " selected" } else { "" };
            h.fmt(format_args!(
                "<option value=\"{value}\"{sel}>{text}</option>"
            ));
        }
        h.raw("</select></div>");
        check(&mut h, &format!("r{i}_final"), "Final", row.is_final);
        check(&mut h, &format!("r{i}_enabled"), "Enabled", row.enabled);
        check(&mut h, &format!("r{i}_remove"), "Remove", row.remove);
        h.raw("</div>");
        let invalid = if errors.is_empty() { "false" } else { "true" };
        h.fmt(format_args!(
            "<div class=\"f\"><label for=\"r{i}_expression\">Expression</label>\
             <textarea id=\"r{i}_expression\" name=\"r{i}_expression\" rows=\"2\" spellcheck=\"false\" \
             aria-describedby=\"r{i}_errors r{i}_warnings\" aria-invalid=\"{invalid}\">"
        ))
        .text(&row.expression)
        .raw("</textarea></div>");
        messages(&mut h, "error rule-errors", &format!("r{i}_errors"), errors);
        messages(
            &mut h,
            "warn rule-warnings",
            &format!("r{i}_warnings"),
            warnings,
        );
        input(
            &mut h,
            &format!("r{i}_description"),
            "Description",
            "type=\"text\" maxlength=\"1024\"",
            &row.description,
        );
        h.raw("</fieldset>");
    }
    h.raw(
        "<div class=\"acts sticky\"><button type=\"submit\" class=\"primary\">Save draft</button>\
           <button type=\"submit\" name=\"more\" value=\"1\">Add rows</button>\
           <a href=\"/console/rules\">Cancel</a></div></form>",
    );
    Ok(rules_page(session, status, "New draft", &h.0))
}

/// The editor, filled with the live rule set or `?from=` a version.
pub async fn form(
    State(app): State<AppState>,
    session: Session,
    RawQuery(q): RawQuery,
) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let q = query(q);
    let from = match q.get("from").filter(|f| !f.is_empty()) {
        Some(f) => version_number(f)?,
        None => rule_versions::list_versions(app.store.as_ref(), sub)
            .await?
            .versions
            .iter()
            .find(|v| v.status.as_str() == "live")
            .map_or(0, |v| v.version),
    };
    let (set, _) = rule_set_of(&app, sub, from).await?;
    editor_page(
        &session,
        StatusCode::OK,
        &Editor::of(&set, from),
        &Found::default(),
    )
}

/// Saves the draft, or shows the form again with what is wrong (`400`).
pub async fn create(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let mut editor = Editor::from_form(&form);
    let (body, rows) = editor.body();
    if form.contains_key("more") {
        editor
            .rows
            .extend(std::iter::repeat_with(Row::blank).take(3));
        let found = Found::of(rule_versions::check_each(&body), &rows);
        return editor_page(&session, StatusCode::OK, &editor, &found);
    }
    let checked = rule_versions::check_each(&body);
    if !checked.is_valid() {
        let found = Found::of(checked, &rows);
        return editor_page(&session, StatusCode::BAD_REQUEST, &editor, &found);
    }
    match rule_versions::create_draft(app.store.as_ref(), sub, &body, &session.principal.actor())
        .await
    {
        Ok(draft) => Ok(see_other(None, &version_href(draft.summary.version))),
        // What the rule-by-rule check cannot see (the set as a whole).
        Err(ServiceError::Invalid(m)) => {
            let found = Found {
                set: vec![m],
                ..Found::of(checked, &rows)
            };
            editor_page(&session, StatusCode::BAD_REQUEST, &editor, &found)
        }
        Err(other) => Err(PageError::from(other)),
    }
}

/// `POST /console/rules/validate`: the editor's form, checked rule by rule;
/// answers `{"valid", "errors", "rules": [{"row", "errors", "warnings"}]}`.
pub async fn validate(session: Session, headers: HeaderMap, body: axum::body::Bytes) -> PageResult {
    session.require_admin()?;
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    session.subscriber()?;
    let editor = Editor::from_form(&form);
    let (body, rows) = editor.body();
    let checked = rule_versions::check_each(&body);
    let answer = serde_json::json!({
        "valid": checked.is_valid(),
        "errors": checked.errors,
        "rules": rows.iter().zip(&checked.rules).map(|(row, c)| serde_json::json!({
            "row": row,
            "errors": c.errors,
            "warnings": c.warnings,
        })).collect::<Vec<_>>(),
    });
    Ok(harden((StatusCode::OK, Json(answer)).into_response()))
}
