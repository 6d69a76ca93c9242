//! The public side, no login: the status page (Swedish or English), its Atom and RSS feeds,
//! SVG badges, Atlassian Statuspage-shaped JSON, and status-page subscriptions. Every answer
//! comes from the in-memory snapshot ([`status`]); no public request reads the store, except
//! a subscription's own row.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::http::state::AppState;

pub mod page;
pub mod refresh;
pub mod status;
pub mod statuspage;
pub mod subscribe;

/// The public side's routes: the page, its feeds, badges, Statuspage JSON and subscriptions.
pub fn router() -> Router<AppState> {
    let mut router = Router::new().route("/", get(status_page)).route("/status", get(status_page));
    for (path, _) in statuspage::DOCUMENTS {
        router = router.route(path, get(move |s: State<AppState>| statuspage(s, path)));
    }
    router
        .route("/history.atom", get(|s: State<AppState>| feed(s, |r| r.atom.clone(), "application/atom+xml")))
        .route("/history.rss", get(|s: State<AppState>| feed(s, |r| r.rss.clone(), "application/rss+xml")))
        .route("/badge/{file}", get(badge))
        .route("/favicon.ico", get(favicon))
        .route("/subscribe", get(subscribe::form).post(subscribe::submit))
        .route("/subscribe/confirm", get(subscribe::confirm_form).post(subscribe::confirm))
        .route("/unsubscribe", get(subscribe::unsubscribe_form).post(subscribe::unsubscribe))
}

/// The public status page (no login, no JavaScript; Swedish or English).
async fn status_page(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::rules::words::Lang::pick(query.get("lang").map(String::as_str), accept);
    let rendered = rendered(&state);
    let body = if lang == crate::rules::words::Lang::Sv { rendered.page_sv.clone() } else { rendered.page_en.clone() };
    if body.is_empty() {
        // The first snapshot is built just after start: say so rather than serve nothing.
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "starting\n").into_response();
    }
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=5"),
            (header::VARY, "Accept-Language"),
        ],
        body,
    )
        .into_response()
}

/// The current snapshot's rendered documents.
fn rendered(state: &AppState) -> Arc<status::Rendered> {
    state.status.read().map(|s| s.rendered.clone()).unwrap_or_default()
}

/// A feed of public updates from the current snapshot.
async fn feed(
    State(state): State<AppState>,
    pick: fn(&status::Rendered) -> bytes::Bytes,
    kind: &'static str,
) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=30")], pick(&rendered(&state))).into_response()
}

/// `/badge/NAME.svg`: one component's status as an SVG badge.
async fn badge(State(state): State<AppState>, axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let found = file.strip_suffix(".svg").and_then(|name| snapshot.components.iter().find(|c| c.name == name));
    match found {
        Some(c) => {
            ([(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=30")], page::badge_svg(c))
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such component\n").into_response(),
    }
}

/// A Statuspage-shaped document from the current snapshot (no store access per request).
async fn statuspage(State(state): State<AppState>, path: &'static str) -> Response {
    let Some(body) = rendered(&state).statuspage.get(path).cloned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "starting\n").into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::ACCESS_CONTROL_ALLOW_ORIGIN, "*"),
            (header::CACHE_CONTROL, "max-age=5"),
        ],
        body,
    )
        .into_response()
}

/// Vakt's own icon (a white V on blue), for pages of organisations that set none.
const FAVICON_ICO: &[u8] = include_bytes!("../../../assets/favicon.ico");

/// `/favicon.ico`: the organisation's icon (`[public] favicon`, PNG or ICO) or Vakt's.
async fn favicon(State(state): State<AppState>) -> Response {
    let own = state.policy.current().public.favicon.clone();
    let cache = (header::CACHE_CONTROL, "max-age=3600");
    match own {
        Some(icon) => {
            ([(header::CONTENT_TYPE, icon.media_type), cache], bytes::Bytes::from(icon.bytes.to_vec())).into_response()
        }
        None => ([(header::CONTENT_TYPE, "image/x-icon"), cache], FAVICON_ICO).into_response(),
    }
}
