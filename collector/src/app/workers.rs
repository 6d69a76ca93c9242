//! The collector's background workers that turn the pure rules into effects through the
//! store: escalation (pages by policy step, routing of events and notices) and reminders.
//! Each wakes on its own schedule and when told to, and stops when `stop` changes.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Notify, watch};

use crate::rules::escalation::{decide, for_event, for_notice};
use crate::rules::live::LivePolicy;
use crate::rules::reminders::plan;
use crate::store::Store;

/// The escalation worker: runs due escalation steps and routes events, whenever woken (the
/// ingest wakes it after deciding something) and at least once a second.
pub async fn escalation(
    store: Store,
    live: LivePolicy,
    wake: Arc<Notify>,
    sender: Arc<Notify>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let now = crate::now_ms();
        let policy = live.current();
        let escalated = store.escalate_due(now, |inc| decide(inc, &policy, now)).await;
        let routed = store
            .route(
                now,
                &policy.public,
                |inc, ev, paged| for_event(inc, ev, paged, &policy),
                |notice| for_notice(notice, &policy, now),
            )
            .await;
        match (escalated, routed) {
            (Ok(a), Ok(b)) if a + b > 0 => sender.notify_one(),
            (Ok(_), Ok(_)) => {}
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %common::report(&e), "escalation worker: store error; retrying")
            }
        }
        tokio::select! {
            _ = wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// The reminder worker: plans every 5 s.
pub async fn reminders(store: Store, live: LivePolicy, sender: Arc<Notify>, mut stop: watch::Receiver<bool>) {
    loop {
        let now = crate::now_ms();
        let policy = live.current();
        match store.reminder_snapshot().await {
            Ok(snapshot) => {
                let due = plan(&snapshot, &policy, now);
                match store.write_reminders(&due, now).await {
                    Ok(n) if n > 0 => {
                        tracing::info!(reminders = n, "reminders due");
                        sender.notify_one();
                    }
                    Ok(_) => {}
                    Err(e) => tracing::error!(error = %common::report(&e), "reminders: could not write"),
                }
            }
            Err(e) => tracing::error!(error = %common::report(&e), "reminders: could not read"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
            _ = stop.changed() => return,
        }
    }
}
