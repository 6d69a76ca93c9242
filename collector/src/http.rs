//! The collector's HTTP side (this slice): health, Prometheus metrics, and a read-only
//! overview of agents and checks. The public status page and the operator API build on it.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::sync::watch;

use crate::ingest::Stats;
use crate::store::Store;

#[derive(Debug, Clone)]
struct AppState {
    store: Store,
    stats: Arc<Stats>,
    status: crate::status::Shared,
}

/// Serve on `listen` until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: Store,
    stats: Arc<Stats>,
    status: crate::status::Shared,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/", get(overview))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(ready))
        .route("/metrics", get(metrics))
        .route("/status", get(status_page))
        .route("/api/v2/summary.json", get(|s: State<AppState>| statuspage(s, crate::status::summary_json)))
        .route("/api/v2/status.json", get(|s: State<AppState>| statuspage(s, crate::status::status_json)))
        .route("/api/v2/components.json", get(|s: State<AppState>| statuspage(s, crate::status::components_doc)))
        .route("/api/v2/incidents.json", get(|s: State<AppState>| statuspage(s, crate::status::incidents_doc)))
        .route(
            "/api/v2/scheduled-maintenances.json",
            get(|s: State<AppState>| statuspage(s, crate::status::maintenances_doc)),
        )
        .route(
            "/api/v2/incidents/unresolved.json",
            get(|s: State<AppState>| statuspage(s, crate::status::unresolved_doc)),
        )
        .route("/history.atom", get(|s: State<AppState>| feed(s, crate::status::atom, "application/atom+xml")))
        .route("/history.rss", get(|s: State<AppState>| feed(s, crate::status::rss, "application/rss+xml")))
        .route("/badge/{file}", get(badge))
        .with_state(AppState { store, stats, status });
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|s| *s).await;
        })
        .await
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
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    (
        [(header::CACHE_CONTROL, "max-age=5"), (header::VARY, "Accept-Language")],
        Html(crate::status::page_html(&snapshot, lang)),
    )
        .into_response()
}

/// A feed of public updates from the current snapshot.
async fn feed(
    State(state): State<AppState>,
    render: fn(&crate::status::Snapshot) -> String,
    kind: &'static str,
) -> Response {
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "max-age=30")], render(&snapshot)).into_response()
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
async fn statuspage(
    State(state): State<AppState>,
    render: fn(&crate::status::Snapshot) -> serde_json::Value,
) -> Response {
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let body = render(&snapshot).to_string();
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

async fn ready(State(state): State<AppState>) -> Response {
    match state.store.result_count().await {
        Ok(_) => "ready\n".into_response(),
        Err(error) => (StatusCode::SERVICE_UNAVAILABLE, format!("store unavailable: {error}\n")).into_response(),
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
    ];
    for (name, help, value) in counters {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", value.load(Ordering::Relaxed));
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

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

async fn overview(State(state): State<AppState>) -> Response {
    let (Ok(agents), Ok(checks)) = (state.store.agents().await, state.store.check_states().await) else {
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
    };
    let mut body = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Vakt</title>\
         <meta name=\"viewport\" content=\"width=device-width\"></head><body><h1>Vakt</h1><h2>Agents</h2>\
         <table><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">State</th><th scope=\"col\">Epoch</th>\
         <th scope=\"col\">Results stored up to seq</th><th scope=\"col\">Lost</th></tr></thead><tbody>",
    );
    for a in &agents {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.agent),
            if a.online { "online" } else { "offline" },
            a.epoch,
            a.contiguous,
            a.lost
        );
    }
    body.push_str(
        "</tbody></table><h2>Checks</h2><table><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">Check</th>\
         <th scope=\"col\">Status</th><th scope=\"col\">Summary</th></tr></thead><tbody>",
    );
    for (agent, check, status, summary, _) in &checks {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(agent),
            escape(check),
            escape(status),
            escape(summary)
        );
    }
    body.push_str("</tbody></table></body></html>\n");
    Html(body).into_response()
}
