//! Signing in and out, the session cookie, CSRF checks and roles.
//!
//! - The cookie holds a random token; the database only its SHA-256. It is
//!   `HttpOnly; SameSite=Strict; Path=/console` (+ `Secure` with
//!   `--console-secure-cookies`), and the session ends 12 h after sign-in
//!   or 2 h after its last request, whichever comes first.
//! - Every state-changing request is a POST whose form carries the
//!   session's CSRF token; a request whose `Origin` is another site's, or
//!   whose `Sec-Fetch-Site` says cross-site, is refused before that.

use axum::extract::{ConnectInfo, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq;

use super::html::Html;
use super::{html, layout, pairs, PageError, PageResult};
use crate::service::console::{self as svc, Principal, SignInError, SESSION_ABSOLUTE};
use crate::state::AppState;

pub const COOKIE: &str = "rg_session";

/// A signed-in browser.
#[derive(Debug, Clone)]
pub struct Session {
    pub principal: Principal,
}

impl Session {
    /// The subscriber whose data this session sees.
    pub fn subscriber(&self) -> Result<&str, PageError> {
        self.principal
            .subscriber_id
            .as_deref()
            .ok_or(PageError::PickSubscriber)
    }

    pub fn require_admin(&self) -> Result<(), PageError> {
        if self.principal.is_admin() {
            Ok(())
        } else {
            Err(PageError::Forbidden(
                "This page is for the subscriber's console admins.".into(),
            ))
        }
    }

    pub fn csrf(&self) -> &str {
        &self.principal.csrf_token
    }

    /// Checks a state-changing request: same-site, and its form's token.
    pub fn check_form(
        &self,
        headers: &HeaderMap,
        form: &std::collections::HashMap<String, String>,
    ) -> Result<(), PageError> {
        same_site(headers)?;
        let given = form.get("csrf").map(String::as_str).unwrap_or_default();
        let expected = self.principal.csrf_token.as_bytes();
        if given.len() == expected.len() && bool::from(given.as_bytes().ct_eq(expected)) {
            Ok(())
        } else {
            Err(forged())
        }
    }
}

fn forged() -> PageError {
    PageError::Forbidden(
        "This form expired or came from another site; reload the page and try again.".into(),
    )
}

/// Refuses a request another site made the browser send.
pub fn same_site(headers: &HeaderMap) -> Result<(), PageError> {
    if let Some(site) = headers.get("sec-fetch-site") {
        if !matches!(site.as_bytes(), b"same-origin" | b"none") {
            return Err(forged());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let host = headers.get(header::HOST).map(HeaderValue::as_bytes);
        let origin = origin.as_bytes();
        let authority = origin
            .strip_prefix(b"http://")
            .or_else(|| origin.strip_prefix(b"https://"));
        if authority.is_none() || authority != host {
            return Err(forged());
        }
    }
    Ok(())
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())
}

impl FromRequestParts<AppState> for Session {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, app: &AppState) -> Result<Self, PageError> {
        let token = cookie_token(&parts.headers).ok_or(PageError::SignIn)?;
        let principal = svc::session(app.store.as_ref(), &token)
            .await?
            .ok_or(PageError::SignIn)?;
        Ok(Session { principal })
    }
}

fn set_cookie(app: &AppState, value: &str, max_age: u64) -> String {
    let secure = if app.secure_cookies { "; Secure" } else { "" };
    format!("{COOKIE}={value}; HttpOnly; SameSite=Strict; Path=/console; Max-Age={max_age}{secure}")
}

fn login_form(message: Option<&str>) -> String {
    let mut h = Html::new();
    h.raw("<section class=\"signin\"><h1>Sign in</h1>");
    if let Some(m) = message {
        h.el("p", "class=\"error\" role=\"alert\"", m);
    }
    h.raw(
        "<form method=\"post\" action=\"/console/login\" class=\"stack\">\
         <input type=\"hidden\" name=\"kind\" value=\"user\">\
         <label for=\"email\">Email</label>\
         <input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required autofocus>\
         <label for=\"password\">Password</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" class=\"primary\">Sign in</button></form>\
         <details><summary>Operator</summary>\
         <form method=\"post\" action=\"/console/login\" class=\"stack\">\
         <input type=\"hidden\" name=\"kind\" value=\"operator\">\
         <label for=\"token\">Admin token</label>\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required>\
         <button type=\"submit\">Sign in as operator</button></form></details></section>",
    );
    layout("Sign in", None, "", &h.0)
}

pub async fn login_page() -> Response {
    html(StatusCode::OK, login_form(None))
}

pub async fn login(State(app): State<AppState>, request: axum::extract::Request) -> PageResult {
    let (parts, body) = request.into_parts();
    same_site(&parts.headers)?;
    let connect = parts.extensions.get::<ConnectInfo<std::net::SocketAddr>>();
    let body = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map_err(|_| PageError::Invalid("The form is too large.".into()))?;
    let form = pairs(&body);
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or_default();
    let address = connect.map_or_else(|| "unknown".to_owned(), |c| c.0.ip().to_string());
    let store = app.store.as_ref();
    let (signed_in, operator) = if field("kind") == "operator" {
        let done = svc::sign_in_operator(
            store,
            &app.admin,
            &app.login_throttle,
            field("token"),
            &address,
        )
        .await;
        (done, true)
    } else {
        let done = svc::sign_in_user(
            store,
            &app.login_throttle,
            field("email"),
            field("password"),
            &address,
        )
        .await;
        (done, false)
    };
    match signed_in {
        Ok(signed) => {
            let target = if operator {
                "/console/subscribers"
            } else {
                "/console/overview"
            };
            let mut response = Redirect::to(target).into_response();
            let cookie = set_cookie(&app, &signed.token, SESSION_ABSOLUTE.as_secs());
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                response.headers_mut().insert(header::SET_COOKIE, v);
            }
            Ok(super::harden(response))
        }
        Err(SignInError::Invalid) => Ok(html(
            StatusCode::UNAUTHORIZED,
            login_form(Some(if operator {
                "That admin token is not valid."
            } else {
                "Wrong email or password, or the account is disabled."
            })),
        )),
        Err(SignInError::Throttled(wait)) => Err(PageError::TooMany(wait)),
        Err(SignInError::Failed(err)) => Err(err.into()),
    }
}

pub async fn logout(
    State(app): State<AppState>,
    session: Session,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> PageResult {
    session.check_form(&headers, &pairs(&body))?;
    svc::sign_out(app.store.as_ref(), &session.principal).await?;
    let mut response = Redirect::to("/console/login").into_response();
    if let Ok(v) = HeaderValue::from_str(&set_cookie(&app, "", 0)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(super::harden(response))
}
