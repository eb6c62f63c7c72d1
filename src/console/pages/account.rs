//! The signed-in user's own account: who they are, and changing their
//! password (the current one checked, the user's other sessions ended).

use axum::extract::{ConnectInfo, FromRequestParts, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::Router;

use super::super::auth::Session;
use super::super::html::Html;
use super::super::{html, layout, pairs, query, see_other, PageError, PageResult};
use crate::service::console::{self, PasswordChangeError, PASSWORD_MAX, PASSWORD_MIN};
use crate::state::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/console/account", get(page))
        .route("/console/account/password", post(change_password))
}

fn render(session: &Session, message: Option<(&str, bool)>, status: StatusCode) -> PageResult {
    let p = &session.principal;
    let mut h = Html::new();
    h.raw("<h1>Your account</h1><dl class=\"kv\">");
    h.el("dt", "", "Email")
        .el("dd", "", p.email.as_deref().unwrap_or("operator"))
        .el("dt", "", "Role")
        .el("dd", "", &p.role);
    if let Some(sub) = &p.subscriber_id {
        h.el("dt", "", "Subscriber").el("dd", "", sub);
    }
    h.raw("</dl><section><h2>Change password</h2>");
    if p.user_id.is_none() {
        h.el(
            "p",
            "class=\"muted\"",
            "The operator signs in with the admin token: there is no password to change here.",
        );
    } else {
        if let Some((m, error)) = message {
            let attrs = if error {
                "class=\"error\" role=\"alert\""
            } else {
                "class=\"ok\" role=\"status\""
            };
            h.el("p", attrs, m);
        }
        h.raw("<form method=\"post\" action=\"/console/account/password\" class=\"stack\">");
        h.hidden("csrf", session.csrf());
        h.raw("<input type=\"text\" name=\"username\" autocomplete=\"username\" hidden value=\"")
            .text(p.email.as_deref().unwrap_or(""))
            .raw("\">");
        h.raw(
            "<label for=\"pw-current\">Current password</label>\
             <input id=\"pw-current\" name=\"current\" type=\"password\" autocomplete=\"current-password\" required>",
        );
        h.fmt(format_args!(
            "<label for=\"pw-new\">New password ({PASSWORD_MIN}–{PASSWORD_MAX} characters)</label>\
             <input id=\"pw-new\" name=\"new\" type=\"password\" autocomplete=\"new-password\" \
             minlength=\"{PASSWORD_MIN}\" maxlength=\"{PASSWORD_MAX}\" required>\
             <label for=\"pw-repeat\">New password again</label>\
             <input id=\"pw-repeat\" name=\"repeat\" type=\"password\" autocomplete=\"new-password\" \
             minlength=\"{PASSWORD_MIN}\" maxlength=\"{PASSWORD_MAX}\" required>"
        ));
        h.raw("<button type=\"submit\" class=\"primary\">Change password</button></form>");
        h.el(
            "p",
            "class=\"muted\"",
            "Your other signed-in browsers are signed out; this one stays signed in.",
        );
    }
    h.raw("</section>");
    Ok(html(
        status,
        layout("Account", Some(session), "/console/account", &h.0),
    ))
}

pub async fn page(session: Session, RawQuery(q): RawQuery) -> PageResult {
    let changed = query(q).get("changed").is_some_and(|v| v == "1");
    let message = changed.then_some((
        "Password changed. Your other sessions were signed out.",
        false,
    ));
    render(&session, message, StatusCode::OK)
}

pub async fn change_password(
    State(app): State<AppState>,
    request: axum::extract::Request,
) -> PageResult {
    let (mut parts, body) = request.into_parts();
    let session = Session::from_request_parts(&mut parts, &app).await?;
    let address = parts
        .extensions
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let body = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| PageError::Invalid("The form is too large.".into()))?;
    let form = pairs(&body);
    session.check_form(&parts.headers, &form)?;
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let done = console::change_password(
        app.store.as_ref(),
        &app.login_throttle,
        &session.principal,
        field("current"),
        field("new"),
        field("repeat"),
        &address,
    )
    .await;
    match done {
        Ok(()) => Ok(see_other(
            Some("/console/account?changed=1"),
            "/console/account",
        )),
        Err(PasswordChangeError::Wrong) => render(
            &session,
            Some(("The current password is wrong.", true)),
            StatusCode::BAD_REQUEST,
        ),
        Err(PasswordChangeError::Unfit(why)) => {
            render(&session, Some((why, true)), StatusCode::BAD_REQUEST)
        }
        Err(PasswordChangeError::Throttled(wait)) => Err(PageError::TooMany(wait)),
        Err(PasswordChangeError::Failed(err)) => Err(err.into()),
    }
}
