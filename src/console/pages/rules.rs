//! Rules (admins only): the place rule versions, shadow, stats and
//! backtests will take once their APIs land; for now the live version.

use axum::http::StatusCode;

use super::super::auth::Session;
use super::super::html::Html;
use super::super::{html, layout, PageResult};

pub async fn page(session: Session) -> PageResult {
    session.require_admin()?;
    session.subscriber()?;
    let mut h = Html::new();
    h.raw(
        "<h1>Rules</h1><p>Drafting, backtesting, shadowing and publishing rule versions \
           will live here. Until then, the operator manages the rule set with \
           <code>PUT /admin/subscribers/{id}/rules</code>.</p>",
    );
    Ok(html(
        StatusCode::OK,
        layout("Rules", Some(&session), "/console/rules", &h.0),
    ))
}
