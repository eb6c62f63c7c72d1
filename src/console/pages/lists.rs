//! The subscriber's lists: each with what the live rules make of it, its
//! entries (added, expired now, removed), and the one-step "add to list" of
//! the review queue and the decision page.
//!
//! A list means nothing by itself: a rule reads `lists.<name>`, and what
//! that rule forces (a final block, a final allow, a weight) is what being
//! on the list does. The pages say so, list by list, from the live rule set.

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{Map, Value};

use super::super::auth::Session;
use super::super::html::{esc, time, url, Html};
use super::super::{html, layout, pairs, query, see_other, PageError, PageResult};
use crate::decision::lists::{ListIndex, ListKind};
use crate::service::console_data::{self, ListValue, Page};
use crate::service::lists::{self, ListUse, ListView};
use crate::service::{console, ServiceError};
use crate::state::AppState;

/// The lists pages' routes, merged into the console's router. The one-step
/// add lives outside `/console/lists/…`, where any name may be a list's.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/lists", get(index).post(create))
        .route("/console/lists/{name}", get(show))
        .route("/console/lists/{name}/entries", post(add))
        .route("/console/lists/{name}/expire", post(expire))
        .route("/console/lists/{name}/remove", post(remove))
        .route("/console/add-to-list", post(add_from_decision))
}

const DAY: i64 = 24 * 3600 * 1000;
/// The expiries the add form offers, in days (none: never).
const EXPIRIES: &[(&str, &str, Option<i64>)] = &[
    ("never", "Never", None),
    ("1d", "In 1 day", Some(1)),
    ("7d", "In 7 days", Some(7)),
    ("30d", "In 30 days", Some(30)),
    ("90d", "In 90 days", Some(90)),
];

/// Which value of a payment a list of `kind` is matched with.
fn matched_with(kind: &str) -> &'static str {
    match ListKind::parse(kind) {
        Some(ListKind::Email) => "the email address",
        Some(ListKind::EmailDomain) => "the email's domain",
        Some(ListKind::Ip) => "the IP (the request's, else the device's), by address or range",
        Some(ListKind::Bin) => "the card's BIN (an entry matches every BIN it begins)",
        Some(ListKind::Card) => "the card's BIN and last 4 digits",
        Some(ListKind::Device) => "the device's visitor id",
        Some(ListKind::User) => "the merchant's user id",
        Some(ListKind::Country) => "the card, IP, billing and shipping countries",
        None => "nothing (unknown kind)",
    }
}

fn placeholder(kind: &str) -> &'static str {
    match ListKind::parse(kind) {
        Some(ListKind::Email) => "jane@example.com",
        Some(ListKind::EmailDomain) => "example.com",
        Some(ListKind::Ip) => "192.0.2.1 or 192.0.2.0/24",
        Some(ListKind::Bin) => "411111",
        Some(ListKind::Card) => "411111:1111 or a card number",
        Some(ListKind::Device) => "visitor id",
        Some(ListKind::User) => "user id",
        Some(ListKind::Country) => "US",
        None => "",
    }
}

/// What being on the list does, rule by rule, as markup.
fn meaning(h: &mut Html, uses: Option<&Vec<ListUse>>) {
    let Some(uses) = uses.filter(|u| !u.is_empty()) else {
        h.el(
            "span",
            "class=\"muted\"",
            "No live rule reads it: being on it changes nothing yet.",
        );
        return;
    };
    h.raw("<ul class=\"plain\">");
    for u in uses {
        let effect = match (u.action, u.is_final) {
            (Some("block"), true) => "blocks, whatever else hits (final)".to_owned(),
            (Some("allow"), true) => "allows, over every block but a final one (final)".to_owned(),
            (Some(action), _) => format!("forces at least {action}"),
            (None, _) => "forces no action".to_owned(),
        };
        h.raw("<li>")
            .el("q", "", &u.rule)
            .text(&format!(" when it hits: {effect}, score {:+}", u.weight));
        h.raw("</li>");
    }
    h.raw("</ul>");
}

const EXPLAIN: &str = "<p class=\"muted\">A rule reads a list as <code>lists.&lt;name&gt;</code>: \
    true when the payment's value of the list's kind is on it and the entry has not expired. \
    What that rule does when it hits is what the list means: a final block beats everything, \
    a final allow beats every other block, otherwise the strictest action wins.</p>";

#[derive(Default)]
struct ListForm {
    name: String,
    kind: String,
    description: String,
}

pub async fn index(State(app): State<AppState>, session: Session) -> PageResult {
    render_index(&app, &session, &ListForm::default(), None).await
}

async fn render_index(
    app: &AppState,
    session: &Session,
    form: &ListForm,
    error: Option<&str>,
) -> PageResult {
    let sub = session.subscriber()?;
    let store = app.store.as_ref();
    let (all, uses) = tokio::try_join!(lists::all(store, sub), lists::live_uses(store, sub))?;
    let mut h = Html::new();
    h.raw("<h1>Lists</h1>").raw(EXPLAIN);
    if all.lists().is_empty() {
        h.el(
            "p",
            "class=\"empty\"",
            "No list yet. Create one below, or add a card, device or email from a decision.",
        );
    } else {
        h.raw(
            "<div class=\"scroll\"><table class=\"list\"><thead><tr><th scope=\"col\">Name</th>\
             <th scope=\"col\">Kind: matched with</th><th scope=\"col\">Description</th>\
             <th scope=\"col\" class=\"num\">Entries</th><th scope=\"col\">In the live rules</th>\
             </tr></thead><tbody>",
        );
        for l in all.lists() {
            h.raw("<tr><td>");
            h.link(&format!("/console/lists/{}", url(l.name())), l.name());
            h.raw("</td><td>").el("code", "", l.kind());
            h.el("div", "class=\"muted\"", matched_with(l.kind()));
            h.raw("</td>")
                .el("td", "", l.description().unwrap_or(""))
                .el("td", "class=\"num\"", &l.entries_total().to_string())
                .raw("<td>");
            meaning(&mut h, uses.get(l.name()));
            h.raw("</td></tr>");
        }
        h.raw("</tbody></table></div>");
    }
    h.raw("<section><h2>Create a list</h2>");
    if let Some(m) = error {
        h.el("p", "class=\"error\" role=\"alert\"", m);
    }
    h.raw("<form method=\"post\" action=\"/console/lists\" class=\"filters\">");
    h.hidden("csrf", session.csrf());
    h.raw("<div class=\"f\"><label for=\"l-name\">Name (a–z, 0–9, _)</label>\
           <input id=\"l-name\" name=\"name\" required maxlength=\"64\" pattern=\"[a-z0-9_]{1,64}\" \
           placeholder=\"blocked_cards\" value=\"")
        .text(&form.name)
        .raw("\"></div><div class=\"f\"><label for=\"l-kind\">Kind</label><select id=\"l-kind\" name=\"kind\">");
    for kind in ListKind::ALL {
        let k = kind.as_str();
        let sel = if k == form.kind { " selected" } else { "" };
        h.fmt(format_args!("<option value=\"{k}\"{sel}>{k}</option>"));
    }
    h.raw("</select></div><div class=\"f\"><label for=\"l-desc\">Description</label>\
           <input id=\"l-desc\" name=\"description\" maxlength=\"1024\" value=\"")
        .text(&form.description)
        .raw("\"></div><div class=\"f go\"><button type=\"submit\" class=\"primary\">Create list</button></div></form></section>");
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(html(
        status,
        layout("Lists", Some(session), "/console/lists", &h.0),
    ))
}

/// A form's field, trimmed.
fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> &'a str {
    form.get(name).map_or("", |v| v.trim())
}

pub async fn create(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let typed = ListForm {
        name: field(&form, "name").to_owned(),
        kind: field(&form, "kind").to_owned(),
        description: field(&form, "description").to_owned(),
    };
    if lists::all(app.store.as_ref(), sub)
        .await?
        .lists()
        .iter()
        .any(|l| l.name() == typed.name)
    {
        let why = format!("A list named '{}' exists already.", typed.name);
        return render_index(&app, &session, &typed, Some(&why)).await;
    }
    let mut map = Map::new();
    map.insert("kind".into(), Value::from(typed.kind.as_str()));
    if !typed.description.is_empty() {
        map.insert(
            "description".into(),
            Value::from(typed.description.as_str()),
        );
    }
    let put = lists::put(
        &app.store,
        &app.scoring.lists,
        sub,
        &typed.name,
        &map,
        session.principal.actor(),
    )
    .await;
    match put {
        Ok(_) => Ok(see_other(
            None,
            &format!("/console/lists/{}", url(&typed.name)),
        )),
        Err(ServiceError::Invalid(m) | ServiceError::Conflict(m)) => {
            render_index(&app, &session, &typed, Some(&m)).await
        }
        Err(other) => Err(other.into()),
    }
}

#[derive(Default)]
struct EntryForm {
    value: String,
    reason: String,
    expiry: String,
}

pub async fn show(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
) -> PageResult {
    let q = query(q);
    let after = q.get("after").filter(|a| !a.is_empty()).cloned();
    render_list(
        &app,
        &session,
        &name,
        after.as_deref(),
        &EntryForm::default(),
        None,
    )
    .await
}

async fn render_list(
    app: &AppState,
    session: &Session,
    name: &str,
    after: Option<&str>,
    form: &EntryForm,
    error: Option<&str>,
) -> PageResult {
    let sub = session.subscriber()?;
    let store = app.store.as_ref();
    let detail = lists::show(store, sub, name, after, lists::DEFAULT_PAGE)
        .await
        .map_err(|err| match err {
            // A name that could not be a list's is no list of this subscriber.
            ServiceError::Invalid(_) => PageError::NotFound,
            other => other.into(),
        })?;
    let (uses, users) = tokio::try_join!(
        lists::live_uses(store, sub),
        console::list_users(store, sub)
    )?;
    let emails: HashMap<String, &str> = users
        .users
        .iter()
        .map(|u| (format!("user:{}", u.id), u.email.as_str()))
        .collect();
    let list = detail.list();
    let href = format!("/console/lists/{}", url(list.name()));
    let csrf = session.csrf();
    let now = crate::store::now_millis();
    let mut h = Html::new();
    h.raw("<div class=\"head\"><h1>List ")
        .el("code", "", list.name())
        .raw("</h1>")
        .el("span", "class=\"tag\"", list.kind())
        .el(
            "span",
            "class=\"muted\"",
            &match list.entries_total() {
                1 => "1 entry".to_owned(),
                n => format!("{n} entries, expired ones included"),
            },
        )
        .raw("</div>");
    if let Some(d) = list.description() {
        h.el("p", "", d);
    }
    h.raw("<p>Matched with ")
        .text(matched_with(list.kind()))
        .raw(".</p><h2>In the live rules</h2>");
    meaning(&mut h, uses.get(list.name()));
    h.raw(EXPLAIN);

    h.raw("<section><h2>Add an entry</h2>");
    if let Some(m) = error {
        h.el("p", "class=\"error\" role=\"alert\"", m);
    }
    h.raw("<form method=\"post\" class=\"filters\" action=\"")
        .text(&format!("{href}/entries"))
        .raw("\">");
    h.hidden("csrf", csrf);
    h.raw("<div class=\"f\"><label for=\"e-value\">Value</label><input id=\"e-value\" name=\"value\" required maxlength=\"256\" placeholder=\"")
        .text(placeholder(list.kind()))
        .raw("\" value=\"")
        .text(&form.value)
        .raw("\"></div><div class=\"f\"><label for=\"e-reason\">Reason</label><input id=\"e-reason\" name=\"reason\" maxlength=\"1024\" value=\"")
        .text(&form.reason)
        .raw("\"></div><div class=\"f\"><label for=\"e-expiry\">Expires</label><select id=\"e-expiry\" name=\"expiry\">");
    for (value, label, _) in EXPIRIES {
        let sel = if *value == form.expiry {
            " selected"
        } else {
            ""
        };
        h.fmt(format_args!(
            "<option value=\"{value}\"{sel}>{label}</option>"
        ));
    }
    h.raw("</select></div><div class=\"f go\"><button type=\"submit\" class=\"primary\">Add entry</button></div></form>");
    h.el(
        "p",
        "class=\"muted\"",
        "Adding a value that is on the list already replaces its entry (reason, expiry, author).",
    );
    h.raw("</section><section><h2>Entries</h2>");
    if detail.entries().is_empty() {
        h.el("p", "class=\"empty\"", "No entries.");
    } else {
        // One form for the table (the token once); each button names its
        // entry and its action.
        let here = match after {
            Some(a) => format!("{href}?after={}", url(a)),
            None => href.clone(),
        };
        h.raw("<form method=\"post\" action=\"")
            .text(&format!("{href}/expire"))
            .raw("\">");
        h.hidden("csrf", csrf).hidden("next", &here);
        h.raw(
            "<div class=\"scroll\"><table class=\"list entries\"><thead><tr><th scope=\"col\">Value</th>\
             <th scope=\"col\">Reason</th><th scope=\"col\">Expires (UTC)</th><th scope=\"col\">Added by</th>\
             <th scope=\"col\">Added (UTC)</th><th scope=\"col\">Actions</th></tr></thead><tbody>",
        );
        let remove = esc(&format!("{href}/remove"));
        for e in detail.entries() {
            let expired = e.expires_at_ms().is_some_and(|at| at <= now);
            h.raw(if expired {
                "<tr class=\"expired\">"
            } else {
                "<tr>"
            });
            h.raw("<td>").el("code", "", e.value()).raw("</td>");
            h.el("td", "", e.reason().unwrap_or(""));
            h.raw("<td>");
            match e.expires_at_ms() {
                Some(at) => {
                    h.text(&time(at));
                    if expired {
                        h.raw(" <span class=\"tag bad\">expired</span>");
                    }
                }
                None => {
                    h.el("span", "class=\"muted\"", "never");
                }
            }
            h.raw("</td>");
            let author = emails.get(e.author()).copied().unwrap_or(e.author());
            h.el("td", "", author)
                .el("td", "", &time(e.created_at_ms()))
                .raw("<td><div class=\"acts\">");
            let value = esc(e.value());
            if !expired {
                h.fmt(format_args!(
                    "<button type=\"submit\" name=\"value\" value=\"{value}\">Expire now</button>"
                ));
            }
            h.fmt(format_args!(
                "<button type=\"submit\" class=\"bad\" formaction=\"{remove}\" name=\"value\" value=\"{value}\">Remove</button>"
            ));
            h.raw("</div></td></tr>");
        }
        h.raw("</tbody></table></div></form>");
    }
    let page: Page<()> = Page {
        items: Vec::new(),
        next: detail.next_cursor().map(str::to_owned),
    };
    super::pager(&mut h, &page, &href, "after", &[]);
    h.raw("</section><p>")
        .link("/console/lists", "← All lists")
        .raw("</p>");
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    Ok(html(
        status,
        layout("List", Some(session), "/console/lists", &h.0),
    ))
}

pub async fn add(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let typed = EntryForm {
        value: form.get("value").cloned().unwrap_or_default(),
        reason: field(&form, "reason").to_owned(),
        expiry: field(&form, "expiry").to_owned(),
    };
    let days = EXPIRIES
        .iter()
        .find(|(value, _, _)| *value == typed.expiry)
        .and_then(|e| e.2);
    let mut map = Map::new();
    map.insert("value".into(), Value::from(typed.value.as_str()));
    if !typed.reason.is_empty() {
        map.insert("reason".into(), Value::from(typed.reason.as_str()));
    }
    if let Some(days) = days {
        let at = crate::store::now_millis() + days * DAY;
        map.insert("expires_at".into(), Value::from(crate::clock::rfc3339(at)));
    }
    let added = lists::add_entry(
        &app.store,
        &app.scoring.lists,
        sub,
        &name,
        &map,
        session.principal.actor(),
    )
    .await;
    match added {
        Ok(_) => Ok(see_other(None, &format!("/console/lists/{}", url(&name)))),
        Err(ServiceError::Invalid(m) | ServiceError::Conflict(m)) => {
            render_list(&app, &session, &name, None, &typed, Some(&m)).await
        }
        Err(other) => Err(other.into()),
    }
}

/// What a button on an entry does.
#[derive(Clone, Copy)]
enum EntryChange {
    Expire,
    Remove,
}

pub async fn expire(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    change_entry(app, session, name, headers, body, EntryChange::Expire).await
}

pub async fn remove(
    State(app): State<AppState>,
    session: Session,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    change_entry(app, session, name, headers, body, EntryChange::Remove).await
}

async fn change_entry(
    app: AppState,
    session: Session,
    name: String,
    headers: HeaderMap,
    body: axum::body::Bytes,
    change: EntryChange,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let value = form.get("value").map(String::as_str).unwrap_or_default();
    let actor = session.principal.actor();
    match change {
        EntryChange::Expire => {
            lists::expire_entry(&app.store, &app.scoring.lists, sub, &name, value, actor).await?;
        }
        EntryChange::Remove => {
            lists::remove_entry(&app.store, &app.scoring.lists, sub, &name, value, actor).await?;
        }
    }
    Ok(see_other(
        form.get("next").map(String::as_str),
        &format!("/console/lists/{}", url(&name)),
    ))
}

/// What the add-to-list controls offer for a decision's values: the
/// subscriber's lists, and which of them hold each value already.
pub struct Offer {
    lists: Vec<(String, ListKind)>,
    index: std::sync::Arc<ListIndex>,
    now: i64,
}

impl Offer {
    pub async fn load(app: &AppState, subscriber: &str) -> Result<Offer, PageError> {
        let store = app.store.as_ref();
        let (all, index) = tokio::try_join!(lists::all(store, subscriber), async {
            app.scoring
                .lists
                .current(store, subscriber)
                .await
                .map_err(ServiceError::from)
        })?;
        Ok(Offer {
            lists: all
                .lists()
                .iter()
                .filter_map(|l: &ListView| Some((l.name().to_owned(), ListKind::parse(l.kind())?)))
                .collect(),
            index,
            now: crate::store::now_millis(),
        })
    }

    /// For one value: the lists of its kind it is not on yet (and whether
    /// each would be created), and the lists it is on.
    fn for_value(&self, v: &ListValue) -> (Vec<(&str, bool)>, Vec<&str>) {
        let mut open = Vec::new();
        let mut on = Vec::new();
        let mut any = false;
        for (name, kind) in &self.lists {
            if *kind != v.kind {
                continue;
            }
            any = true;
            if self.index.holds(name, &v.value, self.now) {
                on.push(name.as_str());
            } else {
                open.push((name.as_str(), false));
            }
        }
        let default = lists::default_list(v.kind);
        if !any && !self.lists.iter().any(|(name, _)| name == default) {
            open.push((default, true));
        }
        (open, on)
    }
}

fn what(kind: ListKind) -> &'static str {
    match kind {
        ListKind::Card => "card",
        ListKind::Device => "device",
        ListKind::Email => "email",
        ListKind::EmailDomain => "domain",
        ListKind::Ip => "IP",
        ListKind::Bin => "BIN",
        ListKind::User => "user",
        ListKind::Country => "country",
    }
}

/// The decision page's add-to-list section: one small form per value.
pub fn decision_forms(
    h: &mut Html,
    offer: &Offer,
    csrf: &str,
    decision: &str,
    values: &[ListValue],
) {
    let next = format!("/console/decisions/{}", url(decision));
    h.raw("<section id=\"lists\" data-hook=\"add-to-list\"><h2>Add to a list</h2>");
    if values.is_empty() {
        h.el(
            "p",
            "class=\"muted\"",
            "This decision has no card, device or email to put on a list.",
        );
    }
    for v in values {
        let (open, on) = offer.for_value(v);
        h.raw("<form method=\"post\" action=\"/console/add-to-list\" class=\"acts add\">");
        h.hidden("csrf", csrf)
            .hidden("decision", decision)
            .hidden("kind", v.kind.as_str())
            .hidden("next", &next);
        let id = format!("add-{}", v.kind.as_str());
        h.fmt(format_args!(
            "<label for=\"{id}\" class=\"what\">{} <code>{}</code></label>",
            esc(&capitalized(what(v.kind))),
            esc(&v.shown)
        ));
        if !open.is_empty() {
            h.fmt(format_args!("<select id=\"{id}\" name=\"list\">"));
            for (name, new) in &open {
                h.raw("<option value=\"").text(name).raw("\">").text(name);
                if *new {
                    h.text(" (new list)");
                }
                h.raw("</option>");
            }
            h.fmt(format_args!(
                "</select><button type=\"submit\">Add {}</button>",
                what(v.kind)
            ));
        }
        if !on.is_empty() {
            let already = if open.is_empty() { "on" } else { "already on" };
            h.el(
                "span",
                "class=\"muted\"",
                &format!("{already} {}", on.join(", ")),
            );
        }
        h.raw("</form>");
    }
    if values
        .iter()
        .any(|v| offer.for_value(v).0.iter().any(|(_, new)| *new))
    {
        h.el(
            "p",
            "class=\"muted\"",
            "A new list is created with its first entry; it blocks nothing until a rule reads it (lists.<name>).",
        );
    }
    h.raw("</section>");
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The review queue's add-to-list control: one select of value → list
/// pairs and one button, so an item keeps to one line.
pub fn queue_form(h: &mut Html, offer: &Offer, csrf: &str, decision: &str, values: &[ListValue]) {
    let choices: Vec<(&ListValue, Vec<(&str, bool)>)> = values
        .iter()
        .map(|v| (v, offer.for_value(v).0))
        .filter(|(_, open)| !open.is_empty())
        .collect();
    if choices.is_empty() {
        return;
    }
    h.raw("<form method=\"post\" action=\"/console/add-to-list\" class=\"inline\" data-hook=\"add-to-list\">");
    h.hidden("csrf", csrf)
        .hidden("decision", decision)
        .hidden("next", "/console/review");
    h.raw("<select name=\"target\" aria-label=\"Add to list\">");
    for (v, open) in &choices {
        h.raw("<optgroup label=\"")
            .text(&format!("{} {}", what(v.kind), v.shown))
            .raw("\">");
        for (name, new) in open {
            h.raw("<option value=\"")
                .text(&format!("{}:{name}", v.kind.as_str()))
                .raw("\">")
                .text(&format!("{} → {name}", what(v.kind)));
            if *new {
                h.text(" (new)");
            }
            h.raw("</option>");
        }
        h.raw("</optgroup>");
    }
    h.raw("</select><button type=\"submit\">Add to list</button></form>");
}

/// One POST from a decision: the value is read from the stored decision
/// (never from the form), put on the chosen list with the decision as the
/// reason, creating the kind's default list when the subscriber has none.
pub async fn add_from_decision(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    let form = pairs(&body);
    session.check_form(&headers, &form)?;
    let sub = session.subscriber()?;
    let id = field(&form, "decision");
    let (kind, list) = match form.get("target") {
        Some(target) => target.split_once(':').unwrap_or((target, "")),
        None => (field(&form, "kind"), field(&form, "list")),
    };
    let kind = ListKind::parse(kind)
        .ok_or_else(|| PageError::Invalid("Pick a card, device or email to add.".into()))?;
    let decision = console_data::explain(app.scoring.decision(sub, id).await?);
    let value = console_data::list_values(&decision.input)
        .into_iter()
        .find(|v| v.kind == kind)
        .ok_or_else(|| {
            PageError::Invalid(format!("This decision has no {} to add.", what(kind)))
        })?;
    lists::add_creating_default(
        &app.store,
        &app.scoring.lists,
        sub,
        list,
        kind,
        &value.value,
        &format!("from decision {}", decision.detail.row.id),
        session.principal.actor(),
    )
    .await?;
    Ok(see_other(
        form.get("next").map(String::as_str),
        &format!("/console/decisions/{}", url(id)),
    ))
}
