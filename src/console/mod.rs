//! `/console`: the analyst web console, server-rendered HTML served by the
//! binary itself (no build step, no CDN). Pages call the services
//! (`service::console`, `service::console_data`, …), never the store, and
//! every read is scoped by the session's subscriber.
//!
//! - [`auth`]: sign-in, sessions, CSRF, roles;
//! - [`html`]: the escaping writer and the page layout;
//! - [`charts`]: server-drawn SVG;
//! - [`pages`]: one module per page.

pub mod auth;
pub mod charts;
pub mod html;
pub mod pages;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;

use self::auth::Session;
use self::html::Html;
use crate::service::ServiceError;
use crate::state::AppState;

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

pub fn router() -> Router<AppState> {
    use pages::*;
    Router::new()
        .route(
            "/console",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route(
            "/console/",
            get(|| async { Redirect::to("/console/overview") }),
        )
        .route("/console/login", get(auth::login_page).post(auth::login))
        .route("/console/logout", post(auth::logout))
        .route(
            "/console/subscribers",
            get(subscribers::page).post(subscribers::pick),
        )
        .route("/console/overview", get(overview::page))
        .route("/console/review", get(review::page))
        .route("/console/decisions", get(decisions::list))
        .route("/console/decisions/{id}", get(decisions::show))
        .route("/console/decisions/{id}/label", post(decisions::label))
        .route("/console/customers", get(customers::find))
        .route("/console/customers/{user_id}", get(customers::show))
        .route(
            "/console/customers/{user_id}/status",
            post(customers::set_status),
        )
        .route("/console/audit", get(audit::page))
        .route("/console/users", get(users::page))
        // Rules (admins): overview, versions, draft editor, backtests, stats.
        .merge(rules::router())
        .merge(lists::routes())
        .merge(account::routes())
        .route(
            "/console/assets/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route(
            "/console/assets/console.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .fallback(|| async { PageError::NotFound.into_response() })
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        body,
    )
        .into_response()
}

/// Who may see a navigation entry.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Need {
    Anyone,
    Admin,
}

/// The navigation, in order.
const NAV: &[(&str, &str, Need)] = &[
    ("/console/overview", "Overview", Need::Anyone),
    ("/console/review", "Review", Need::Anyone),
    ("/console/decisions", "Decisions", Need::Anyone),
    ("/console/customers", "Customers", Need::Anyone),
    ("/console/lists", "Lists", Need::Anyone),
    ("/console/audit", "Audit log", Need::Anyone),
    ("/console/rules", "Rules", Need::Admin),
    ("/console/users", "Users", Need::Admin),
];

/// Security headers every console page carries: no inline script or
/// style, no framing, nothing cached.
pub(crate) fn harden(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; script-src 'self'; connect-src 'self'; \
             img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// A page of HTML with a status.
pub fn html(status: StatusCode, body: String) -> Response {
    harden(
        (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response(),
    )
}

/// The whole document around a page's content.
pub fn layout(title: &str, session: Option<&Session>, active: &str, content: &str) -> String {
    let mut h = Html::new();
    h.raw("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .el("title", "", &format!("{title} · riskgate"))
        .raw("<link rel=\"stylesheet\" href=\"/console/assets/console.css\">")
        .raw("<script src=\"/console/assets/console.js\" defer></script></head><body>")
        .raw("<a class=\"skip\" href=\"#main\">Skip to content</a><header class=\"top\">")
        .raw("<a class=\"brand\" href=\"/console/overview\">riskgate</a>");
    if let Some(s) = session {
        h.raw("<nav aria-label=\"Main\"><ul>");
        for (path, label, need) in NAV {
            if *need == Need::Admin && !s.principal.is_admin() {
                continue;
            }
            let current = if *path == active {
                " aria-current=\"page\""
            } else {
                ""
            };
            h.fmt(format_args!(
                "<li><a href=\"{path}\"{current}>{label}</a></li>"
            ));
        }
        h.raw("</ul></nav><div class=\"who\">");
        let who = s.principal.email.as_deref().unwrap_or("operator");
        h.link("/console/account", who);
        if let Some(sub) = &s.principal.subscriber_id {
            h.raw(" · ");
            if s.principal.is_operator() {
                h.link("/console/subscribers", sub);
            } else {
                h.text(sub);
            }
        }
        h.text(" · ")
            .el("span", "class=\"role\"", &s.principal.role);
        h.post_button(
            "/console/logout",
            &s.principal.csrf_token,
            &[],
            "link",
            "Sign out",
            "",
        );
        h.raw("</div>");
    }
    h.raw("</header><main id=\"main\" tabindex=\"-1\">")
        .raw(content)
        .raw("</main></body></html>");
    h.0
}

/// Why a page could not be shown, as the browser sees it.
#[derive(Debug)]
pub enum PageError {
    /// Not signed in: to the sign-in page.
    SignIn,
    /// The operator has not picked a subscriber yet.
    PickSubscriber,
    Invalid(String),
    Forbidden(String),
    NotFound,
    TooMany(u64),
    Unavailable,
    Internal,
}

impl From<ServiceError> for PageError {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(m)
            | ServiceError::Unprocessable(m)
            | ServiceError::Conflict(m) => Self::Invalid(m),
            ServiceError::Forbidden(m) => Self::Forbidden(m),
            ServiceError::NotFound(_) => Self::NotFound,
            ServiceError::RateLimited { retry_after, .. } => Self::TooMany(retry_after),
            ServiceError::Store(crate::store::StoreError::Unavailable(_)) => Self::Unavailable,
            other => {
                tracing::error!(error = %other, "console page failed");
                Self::Internal
            }
        }
    }
}

impl From<crate::store::StoreError> for PageError {
    fn from(err: crate::store::StoreError) -> Self {
        ServiceError::from(err).into()
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let retry = match &self {
            Self::TooMany(wait) => Some(*wait),
            _ => None,
        };
        let (status, title, message) = match self {
            Self::SignIn => return harden(Redirect::to("/console/login").into_response()),
            Self::PickSubscriber => {
                return harden(Redirect::to("/console/subscribers").into_response())
            }
            Self::Invalid(m) => (StatusCode::BAD_REQUEST, "Not understood", m),
            Self::Forbidden(m) => (StatusCode::FORBIDDEN, "Not allowed", m),
            Self::NotFound => (
                StatusCode::NOT_FOUND,
                "Not found",
                "There is nothing here for this subscriber.".to_owned(),
            ),
            Self::TooMany(wait) => (
                StatusCode::TOO_MANY_REQUESTS,
                "Too many attempts",
                format!(
                    "Too many failed sign-ins; try again in {} minutes.",
                    wait.div_ceil(60)
                ),
            ),
            Self::Unavailable => (
                StatusCode::SERVICE_UNAVAILABLE,
                "Unavailable",
                "The database is not answering; try again shortly.".to_owned(),
            ),
            Self::Internal => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "The error was logged.".to_owned(),
            ),
        };
        let mut h = Html::new();
        h.el("h1", "", title).el("p", "", &message);
        h.raw("<p><a href=\"/console/overview\">Back to the overview</a></p>");
        let mut response = html(status, layout(title, None, "", &h.0));
        if let Some(wait) = retry {
            if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        response
    }
}

pub type PageResult = Result<Response, PageError>;

/// Name/value pairs of a query string or a form body (the last of a name
/// wins); never a rejection, whatever the bytes.
pub fn pairs(bytes: &[u8]) -> std::collections::HashMap<String, String> {
    url::form_urlencoded::parse(bytes).into_owned().collect()
}

pub fn query(raw: Option<String>) -> std::collections::HashMap<String, String> {
    pairs(raw.unwrap_or_default().as_bytes())
}

/// After a form: back to the page it came from (a console path only).
pub fn see_other(next: Option<&str>, fallback: &str) -> Response {
    let target = next
        .filter(|n| n.starts_with("/console/") && !n.starts_with("//") && !n.contains('\\'))
        .unwrap_or(fallback);
    harden(Redirect::to(target).into_response())
}
