//! The collector's HTTP side: the public status page (`/`, no login), its feeds, badges and
//! Statuspage-compatible JSON, health and Prometheus metrics, and the operator UI and API
//! (`ops`), which sit behind login and roles.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::http::header;
use axum::response::Response;
use axum::routing::get;
use tokio::sync::watch;

use crate::http::state::AppState;

pub mod denials;
pub mod enroll;
pub mod error;
pub mod html;
pub mod ops;
pub mod probes;
pub mod public;
pub mod serve;
pub mod state;
pub mod tls;

/// Security headers on every response: no framing, no sniffing, scripts and styles only from
/// here (the pages' one inline style block is allowed by hash-free `'unsafe-inline'` for style
/// only; no inline script anywhere).
async fn security_headers(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let h = response.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, header::HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, header::HeaderValue::from_static("same-origin"));
    h.insert(header::X_FRAME_OPTIONS, header::HeaderValue::from_static("DENY"));
    response
}

/// The whole HTTP surface.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(probes::ready))
        .route("/metrics", get(probes::metrics))
        .route(
            "/ops.js",
            get(|| async {
                ([(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=3600")], ops::ui::SCRIPT)
            }),
        )
        .route(
            "/api/v1/enroll",
            axum::routing::post(enroll::enroll).layer(axum::extract::DefaultBodyLimit::max(enroll::BODY_LIMIT)),
        )
        .route(
            "/api/v1/enroll/renew",
            axum::routing::post(enroll::renew).layer(axum::extract::DefaultBodyLimit::max(enroll::BODY_LIMIT)),
        )
        .merge(public::router())
        .merge(ops::router(state.clone()))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serve on `listener` until `stop` turns true: HTTPS with `tls`, else plain HTTP, with the
/// connection caps and timeouts of [`crate::http::serve`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut state: AppState,
    open_files: u64,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    state.secure = tls.is_some();
    let stats = state.serve_stats.clone();
    let limits = serve::ConnectionLimits::from_open_files(open_files);
    tracing::info!(total = limits.total, per_source = limits.per_source, "http connection limits");
    serve::serve(listener, tls, app(state), limits, stats, stop).await
}

/// Bind the HTTP listener (before anything else starts, so a taken port fails early).
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}
