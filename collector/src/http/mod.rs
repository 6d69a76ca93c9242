//! The collector's HTTP side: the public status page (`/`, no login), its feeds, badges and
//! Statuspage-compatible JSON, health and Prometheus metrics, and the operator UI and API
//! (`ops`), which sit behind login and roles.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::ingest::Stats;
use crate::store::Store;

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    pub store: Store,
    pub stats: Arc<Stats>,
    pub status: crate::status::Shared,
    pub policy: Arc<crate::policy::Policy>,
    /// Login attempts, and subscriptions per source (the public form sends mail).
    pub limiter: crate::ops::Limiter,
    /// Served over TLS: cookies get `Secure`.
    pub secure: bool,
    /// Wakes the status snapshot's refresh after an operator change.
    pub refresh: Arc<tokio::sync::Notify>,
    /// What `/readyz` answers from.
    pub health: Arc<crate::health::Health>,
    /// Connection counters of the HTTP server.
    pub serve_stats: Arc<crate::serve::ServeStats>,
    /// The embedded broker's refused logins (none without an embedded broker).
    pub broker_stats: Arc<crate::broker::BrokerStats>,
    /// Password hashing, bounded (see [`crate::hashing`]).
    pub hashing: Arc<crate::hashing::Hashing>,
    /// Refused requests, counted and written to the audit trail in aggregate.
    pub denials: Arc<crate::denials::Denials>,
    /// Signs device cookies (a browser that logged in as a user before).
    pub device_secret: Arc<[u8; 32]>,
}

impl AppState {
    pub fn new(
        store: Store,
        stats: Arc<Stats>,
        status: crate::status::Shared,
        policy: Arc<crate::policy::Policy>,
    ) -> Self {
        AppState {
            store,
            stats,
            status,
            policy,
            limiter: Arc::default(),
            secure: false,
            refresh: Arc::new(tokio::sync::Notify::new()),
            health: Arc::new(crate::health::Health::new(crate::now_ms())),
            serve_stats: Arc::default(),
            broker_stats: Arc::default(),
            hashing: Arc::new(crate::hashing::Hashing::for_this_host()),
            denials: Arc::default(),
            device_secret: Arc::new(rand::random()),
        }
    }

    /// An operator changed something the public may see: refresh the snapshot now.
    pub fn changed(&self) {
        self.refresh.notify_one();
    }
}

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
        .route("/", get(status_page))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/status", get(status_page))
        .route("/api/v2/summary.json", get(|s: State<AppState>| statuspage(s, |r| r.summary.clone())))
        .route("/api/v2/status.json", get(|s: State<AppState>| statuspage(s, |r| r.status.clone())))
        .route("/api/v2/components.json", get(|s: State<AppState>| statuspage(s, |r| r.components.clone())))
        .route("/api/v2/incidents.json", get(|s: State<AppState>| statuspage(s, |r| r.incidents.clone())))
        .route(
            "/api/v2/scheduled-maintenances.json",
            get(|s: State<AppState>| statuspage(s, |r| r.maintenances.clone())),
        )
        .route("/api/v2/incidents/unresolved.json", get(|s: State<AppState>| statuspage(s, |r| r.unresolved.clone())))
        .route("/history.atom", get(|s: State<AppState>| feed(s, |r| r.atom.clone(), "application/atom+xml")))
        .route("/history.rss", get(|s: State<AppState>| feed(s, |r| r.rss.clone(), "application/rss+xml")))
        .route("/badge/{file}", get(badge))
        .route("/subscribe", get(crate::subscribe::form).post(crate::subscribe::submit))
        .route("/subscribe/confirm", get(crate::subscribe::confirm_form).post(crate::subscribe::confirm))
        .route("/unsubscribe", get(crate::subscribe::unsubscribe_form).post(crate::subscribe::unsubscribe))
        .route(
            "/ops.js",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/javascript"), (header::CACHE_CONTROL, "max-age=3600")],
                    crate::ops::ui::SCRIPT,
                )
            }),
        )
        .merge(crate::ops::router(state.clone()))
        .layer(axum::middleware::from_fn(security_headers))
        .with_state(state)
}

/// Serve on `listener` until `stop` turns true: HTTPS with `tls`, else plain HTTP, with the
/// connection caps and timeouts of [`crate::serve`].
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    mut state: AppState,
    stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    state.secure = tls.is_some();
    let stats = state.serve_stats.clone();
    let limits = crate::serve::ConnectionLimits::from_open_files(crate::limits::open_files().0);
    tracing::info!(total = limits.total, per_source = limits.per_source, "http connection limits");
    crate::serve::serve(listener, tls, app(state), limits, stats, stop).await
}

/// Bind the HTTP listener (before anything else starts, so a taken port fails early).
pub async fn bind(listen: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen).await
}

/// The public status page (no login, no JavaScript; Swedish or English).
async fn status_page(
    State(state): State<AppState>,
    axum::extract::Query(query): axum::extract::Query<std::collections::HashMap<String, String>>,
    headers: axum::http::HeaderMap,
) -> Response {
    let accept = headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
    let lang = crate::status::Lang::pick(query.get("lang").map(String::as_str), accept);
    let rendered = rendered(&state);
    let body = if lang == crate::status::Lang::Sv { rendered.page_sv.clone() } else { rendered.page_en.clone() };
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
fn rendered(state: &AppState) -> Arc<crate::status::Rendered> {
    state.status.read().map(|s| s.rendered.clone()).unwrap_or_default()
}

/// A feed of public updates from the current snapshot.
async fn feed(
    State(state): State<AppState>,
    pick: fn(&crate::status::Rendered) -> bytes::Bytes,
    kind: &'static str,
) -> Response {
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=30")], pick(&rendered(&state))).into_response()
}

/// `/badge/NAME.svg`: one component's status as an SVG badge.
async fn badge(State(state): State<AppState>, axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let found = file.strip_suffix(".svg").and_then(|name| snapshot.components.iter().find(|c| c.name == name));
    match found {
        Some(c) => (
            [(header::CONTENT_TYPE, "image/svg+xml"), (header::CACHE_CONTROL, "max-age=30")],
            crate::status::badge_svg(c),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such component\n").into_response(),
    }
}

/// A Statuspage-shaped document from the current snapshot (no store access per request).
async fn statuspage(State(state): State<AppState>, pick: fn(&crate::status::Rendered) -> bytes::Bytes) -> Response {
    let body = pick(&rendered(&state));
    if body.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "1")], "starting\n").into_response();
    }
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

/// Ready only while the broker link is up, the store takes writes and ingest moves (see
/// [`crate::health`]); never a query per probe.
async fn ready(State(state): State<AppState>) -> Response {
    let verdict = state.health.verdict(crate::now_ms());
    if verdict.ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", verdict.summary())).into_response()
    }
}

async fn metrics(State(state): State<AppState>) -> Response {
    let s = &state.stats;
    let mut out = String::new();
    let counters = [
        ("vakt_ingest_received_total", "Messages received on agent topics.", &s.received),
        ("vakt_ingest_results_stored_total", "Results stored for the first time.", &s.stored),
        ("vakt_ingest_results_duplicate_total", "Results received again and ignored.", &s.duplicates),
        ("vakt_ingest_acks_total", "Acks published to agents.", &s.acks),
        ("vakt_ingest_batches_total", "Transactions written.", &s.batches),
        ("vakt_ingest_states_total", "Births and deaths received.", &s.states),
        ("vakt_ingest_heartbeats_total", "Heartbeats received.", &s.heartbeats),
        ("vakt_store_errors_total", "Failed store writes (retried).", &s.store_errors),
        (
            "vakt_http_connections_refused_total",
            "Connections closed at once: their source had its share open.",
            &state.serve_stats.refused_per_source,
        ),
        (
            "vakt_http_accept_errors_total",
            "Connections the system refused to accept (descriptors, memory).",
            &state.serve_stats.accept_errors,
        ),
        (
            "vakt_broker_logins_refused_total",
            "Embedded broker logins refused (wrong password or a reserved client id).",
            &state.broker_stats.refused_logins,
        ),
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
    }
    let _ = writeln!(
        out,
        "# HELP vakt_http_connections Open HTTP connections.\n# TYPE vakt_http_connections gauge\nvakt_http_connections {}",
        state.serve_stats.open.load(Ordering::Relaxed)
    );
    let verdict = state.health.verdict(crate::now_ms());
    let _ = writeln!(
        out,
        "# HELP vakt_collector_ready Whether the collector is doing its job (see /readyz), by part.\n# TYPE vakt_collector_ready gauge"
    );
    for part in ["broker", "store", "ingest"] {
        let ok = !verdict.problems.iter().any(|p| p.part == part);
        let _ = writeln!(out, "vakt_collector_ready{{part=\"{part}\"}} {}", u8::from(ok));
    }
    let _ = writeln!(
        out,
        "# HELP vakt_ingest_dropped_total Payloads dropped, by reason.\n# TYPE vakt_ingest_dropped_total counter"
    );
    for (reason, n) in s.dropped() {
        let _ = writeln!(out, "vakt_ingest_dropped_total{{reason=\"{reason}\"}} {n}");
    }
    if let Ok(agents) = state.store.agents().await {
        let online = agents.iter().filter(|a| a.online).count();
        let _ = writeln!(
            out,
            "# HELP vakt_agents Known agents by state.\n# TYPE vakt_agents gauge\nvakt_agents{{state=\"online\"}} {online}\nvakt_agents{{state=\"offline\"}} {}",
            agents.len() - online
        );
    }
    if let Ok((incidents, notifications)) = state.store.incident_gauges().await {
        let _ =
            writeln!(out, "# HELP vakt_incidents Open incidents by state and severity.\n# TYPE vakt_incidents gauge");
        for state in ["triggered", "acknowledged"] {
            for severity in ["critical", "major", "minor"] {
                let n = incidents.iter().find(|(s, v, _)| s == state && v == severity).map_or(0, |x| x.2);
                let _ = writeln!(out, "vakt_incidents{{state=\"{state}\",severity=\"{severity}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP vakt_notifications Notifications in the log by state (failed: given up after every retry).\n# TYPE vakt_notifications gauge"
        );
        for state in ["pending", "sending", "sent", "failed"] {
            let n = notifications.iter().find(|(s, _)| s == state).map_or(0, |x| x.1);
            let _ = writeln!(out, "vakt_notifications{{state=\"{state}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
