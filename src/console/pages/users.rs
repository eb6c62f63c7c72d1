//! The subscriber's console users (admins only; created by the operator).

use axum::extract::State;
use axum::http::StatusCode;

use super::super::auth::Session;
use super::super::html::{esc, Html};
use super::super::{html, layout, PageResult};
use crate::service::console;
use crate::state::AppState;

pub async fn page(State(app): State<AppState>, session: Session) -> PageResult {
    session.require_admin()?;
    let sub = session.subscriber()?;
    let list = console::list_users(app.store.as_ref(), sub).await?;
    let mut h = Html::new();
    h.raw("<h1>Console users</h1><p class=\"muted\">The operator creates and disables users \
           (<code>POST /admin/subscribers/{id}/users</code> or <code>riskgate user create</code>).</p>");
    h.raw(
        "<table class=\"list\"><thead><tr><th scope=\"col\">Email</th><th scope=\"col\">Role</th>\
           <th scope=\"col\">Status</th><th scope=\"col\">Last sign-in</th></tr></thead><tbody>",
    );
    for u in &list.users {
        h.raw("<tr>").el("td", "", &u.email).el("td", "", &u.role);
        h.fmt(format_args!(
            "<td><span class=\"tag\">{}</span></td>",
            esc(&u.status)
        ));
        h.el("td", "", u.last_sign_in_at.as_deref().unwrap_or("never"))
            .raw("</tr>");
    }
    h.raw("</tbody></table>");
    Ok(html(
        StatusCode::OK,
        layout("Users", Some(&session), "/console/users", &h.0),
    ))
}
