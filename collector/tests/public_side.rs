//! The public side answers from its in-memory snapshot: with the database closed under it,
//! every page, feed, badge and Statuspage document still answers, as it was last rendered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use collector::http::public::status::Shared;
use collector::http::state::AppState;
use collector::store::Store;
use tower::ServiceExt;

#[tokio::test]
async fn public_documents_are_served_with_the_store_closed() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
    let mut policy = collector::rules::policy::Policy::default();
    policy.seed_components("web-1", &[("http".into(), "Website".into())]);
    let policy = collector::rules::live::LivePolicy::new(policy);
    let shared = Shared::default();
    let refresh = Arc::new(tokio::sync::Notify::new());
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = tokio::spawn(collector::http::public::refresh::run(
        store.clone(),
        policy.clone(),
        shared.clone(),
        refresh,
        stopped,
    ));
    // The first snapshot, rendered.
    for _ in 0..100 {
        if !shared.read().unwrap().rendered.page_en.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.send(true).unwrap();
    worker.await.unwrap();
    let app = collector::http::app(AppState::new(store.clone(), Arc::default(), shared, policy));
    store.pool().close().await;
    assert!(store.check_states().await.is_err(), "the store is closed");
    let paths = [
        "/",
        "/?lang=sv",
        "/api/v2/summary.json",
        "/api/v2/status.json",
        "/api/v2/components.json",
        "/api/v2/incidents.json",
        "/api/v2/incidents/unresolved.json",
        "/api/v2/scheduled-maintenances.json",
        "/api/v2/scheduled-maintenances/upcoming.json",
        "/api/v2/scheduled-maintenances/active.json",
        "/history.atom",
        "/history.rss",
        "/badge/http.svg",
        "/favicon.ico",
        "/subscribe",
    ];
    for path in paths {
        let mut req = Request::builder().uri(path).body(Body::empty()).unwrap();
        req.extensions_mut().insert(ConnectInfo(SocketAddr::from(([192, 0, 2, 7], 40000))));
        let response = app.clone().oneshot(req).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        assert!(!body.is_empty(), "{path}");
    }
}
