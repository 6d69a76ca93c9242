//! `/readyz` and `/metrics`: what the collector says about itself. Readiness answers from
//! [`crate::health::Health`], never a query per probe.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::http::state::AppState;

/// Ready only while the broker link is up, the store takes writes and ingest moves (see
/// [`crate::health`]); never a query per probe.
pub(crate) async fn ready(State(state): State<AppState>) -> Response {
    let verdict = state.health.verdict(crate::now_ms());
    if verdict.ready() {
        "ready\n".into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {}\n", verdict.summary())).into_response()
    }
}

pub(crate) async fn metrics(State(state): State<AppState>) -> Response {
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
        (
            "vakt_broker_certificates_refused_total",
            "Embedded broker TLS clients refused: no certificate from the collector's CA, or one retired or of a revoked agent.",
            &state.broker_stats.refused_certificates,
        ),
        (
            "vakt_broker_packets_refused_total",
            "Agents disconnected by the embedded broker for a publish or subscribe beyond their own topics.",
            &state.broker_stats.refused_packets,
        ),
        (
            "vakt_broker_plaintext_refused_total",
            "Plaintext MQTT clients from other hosts refused by the embedded broker's TLS listener.",
            &state.broker_stats.refused_plaintext,
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
    let reloads = &state.reload_stats;
    let _ = writeln!(
        out,
        "# HELP vakt_policy_reloads_total Policy reloads (SIGHUP), by outcome.\n# TYPE vakt_policy_reloads_total counter\n\
         vakt_policy_reloads_total{{outcome=\"applied\"}} {}\nvakt_policy_reloads_total{{outcome=\"refused\"}} {}",
        reloads.applied.load(Ordering::Relaxed),
        reloads.refused.load(Ordering::Relaxed)
    );
    let _ = writeln!(
        out,
        "# HELP vakt_policy_reload_refused Whether the last reload was refused (the collector runs on the policy before it).\n\
         # TYPE vakt_policy_reload_refused gauge\nvakt_policy_reload_refused {}",
        u8::from(reloads.refused_because().is_some())
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
    // The store's gauges as the status worker last read them (a scrape reads no store).
    let gauges = state.status.read().map(|s| s.gauges.clone()).unwrap_or_default();
    if gauges.read_ms > 0 {
        let _ = writeln!(
            out,
            "# HELP vakt_agents Known agents by state.\n# TYPE vakt_agents gauge\nvakt_agents{{state=\"online\"}} {}\nvakt_agents{{state=\"offline\"}} {}",
            gauges.agents_online, gauges.agents_offline
        );
        let _ =
            writeln!(out, "# HELP vakt_incidents Open incidents by state and severity.\n# TYPE vakt_incidents gauge");
        for state in ["triggered", "acknowledged"] {
            for severity in ["critical", "major", "minor"] {
                let n = gauges.incidents.iter().find(|(s, v, _)| s == state && v == severity).map_or(0, |x| x.2);
                let _ = writeln!(out, "vakt_incidents{{state=\"{state}\",severity=\"{severity}\"}} {n}");
            }
        }
        let _ = writeln!(
            out,
            "# HELP vakt_notifications Notifications in the log by state (failed: given up after every retry).\n# TYPE vakt_notifications gauge"
        );
        for state in ["pending", "sending", "sent", "failed"] {
            let n = gauges.notifications.iter().find(|(s, _)| s == state).map_or(0, |x| x.1);
            let _ = writeln!(out, "vakt_notifications{{state=\"{state}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
