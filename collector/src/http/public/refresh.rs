//! The worker that refreshes the public snapshot every second (and at once when a change asks
//! for it), renders every public document once per refresh, and gathers uptime into the store
//! once a minute.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::http::public::status::{Gauges, HISTORY_MS, Rendered, Shared, Snapshot, Uptime, build, utc_day};
use crate::http::public::{page, statuspage};
use crate::incident::Ms;
use crate::model::{ComponentDay, DayTimes};
use crate::rules::live::LivePolicy;
use crate::rules::words::Lang;
use crate::store::Store;

/// Every public document of a snapshot.
fn render(s: &Snapshot) -> Rendered {
    let json = |v: serde_json::Value| bytes::Bytes::from(v.to_string());
    Rendered {
        statuspage: statuspage::DOCUMENTS.iter().map(|(path, make)| (*path, json(make(s)))).collect(),
        page_en: bytes::Bytes::from(page::page_html(s, Lang::En)),
        page_sv: bytes::Bytes::from(page::page_html(s, Lang::Sv)),
        atom: bytes::Bytes::from(page::atom(s)),
        rss: bytes::Bytes::from(page::rss(s)),
    }
}

/// The last 90 days of every component from the store (empty if it cannot be read).
async fn load_days(store: &Store, now: Ms) -> Arc<std::collections::HashMap<String, Vec<(String, DayTimes)>>> {
    let mut out: std::collections::HashMap<String, Vec<(String, DayTimes)>> = std::collections::HashMap::new();
    match store.component_days(&utc_day(now - 89 * 86_400_000)).await {
        Ok(rows) => {
            for ComponentDay { component, day, times } in rows {
                out.entry(component).or_default().push((day, times));
            }
        }
        Err(e) => tracing::error!(error = %common::report(&e), "status: could not read uptime"),
    }
    Arc::new(out)
}

/// How often gathered uptime is written (a crash loses at most this much of it).
const UPTIME_FLUSH_MS: Ms = 60_000;

/// How often the gauges `/metrics` shows are read from the store.
const GAUGES_MS: Ms = 5_000;

/// The store's gauges now, or why not.
async fn read_gauges(store: &Store, now: Ms) -> Result<Gauges, crate::store::StoreError> {
    let agents = store.agents().await?;
    let (incidents, notifications) = store.incident_gauges().await?;
    let online = agents.iter().filter(|a| a.online).count();
    Ok(Gauges { read_ms: now, agents_online: online, agents_offline: agents.len() - online, incidents, notifications })
}

/// Refresh the snapshot every second (three indexed reads; the gauges every five seconds), until
/// `stop`.
pub async fn run(
    store: Store,
    policy: LivePolicy,
    shared: Shared,
    refresh: Arc<tokio::sync::Notify>,
    mut stop: watch::Receiver<bool>,
) {
    let mut uptime = Uptime::default();
    let mut flushed = crate::now_ms();
    let mut days = load_days(&store, flushed).await;
    let mut gauges: Arc<Gauges> = Arc::default();
    loop {
        let now = crate::now_ms();
        if now - gauges.read_ms >= GAUGES_MS {
            match read_gauges(&store, now).await {
                Ok(g) => gauges = Arc::new(g),
                Err(e) => tracing::error!(error = %common::report(&e), "metrics: could not read the gauges"),
            }
        }
        if let Ok(current) = shared.read().map(|s| s.clone()) {
            uptime.record(&current.components, now);
        }
        if now - flushed >= UPTIME_FLUSH_MS || *stop.borrow() {
            flushed = now;
            if let Err(e) = store.add_component_time(&uptime.take()).await {
                tracing::error!(error = %common::report(&e), "status: could not record uptime");
            }
            days = load_days(&store, now).await;
        }
        let public = store.public_incidents(now - HISTORY_MS).await;
        match (store.check_states().await, store.open_incident_components().await, public) {
            (Ok(states), Ok(affected), Ok(public)) => {
                let checks: Vec<(String, String, String)> =
                    states.into_iter().map(|c| (c.agent, c.check, c.status)).collect();
                let previous = shared.read().map(|s| s.clone()).unwrap_or_default();
                let mut next = build(&policy.current(), &checks, &affected, &previous, now);
                next.incidents = public;
                next.uptime = days.clone();
                next.gauges = gauges.clone();
                next.rendered = Arc::new(render(&next));
                if let Ok(mut slot) = shared.write() {
                    *slot = Arc::new(next);
                }
            }
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                tracing::error!(error = %common::report(&e), "status: could not refresh")
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = refresh.notified() => {}
            _ = stop.changed() => {
                let _ = store.add_component_time(&uptime.take()).await;
                return;
            }
        }
    }
}
