//! The collector watching itself: a monitoring system that stops monitoring must say so, and
//! not through the part that stopped.
//!
//! Every [`PROBE_EVERY_MS`] the store gets one small synced write (`Store::probe_write`), so a
//! store that cannot write is noticed even when no agent sends anything. Every second the
//! [`Health`] verdict is read. When a part (broker link, store, ingest) has failed for
//! `[self_monitor] degraded_after` (30 s by default), the collector:
//! - logs it (once per episode, and when the failing parts change),
//! - pages `[self_monitor] notify` **directly** by webhook or e-mail, without the notification
//!   log, which lives in the store that may be what failed,
//! - opens a "collector degraded" incident in the store as soon as the store takes it (without
//!   an escalation of its own: the direct page is the page).
//!
//! When every part has been well for [`RECOVERED_AFTER_MS`], it pages "recovered" the same way
//! and resolves the incident. The incident's id is kept in the store, so a restart in the
//! middle resolves the same incident rather than opening a second.
//!
//! It also sends the audit trail's signed head to `[audit] export` every `export_every` (the
//! first a few seconds after start), so a copy of it lives away from this host (see
//! `store::audit`).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use crate::app::notify::Sender;
use crate::health::{Health, PROBE_EVERY_MS, Verdict, Writer};
use crate::incident::Ms;
use crate::rules::live::LivePolicy;
use crate::rules::policy::{Meta, Severity, Urgency};
use crate::store::Store;
use crate::store::audit::Who;

/// Well this long after a degraded episode: recovered.
pub const RECOVERED_AFTER_MS: Ms = 10_000;
/// A probe write that has not finished after this counts as failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

fn system() -> Who {
    Who::system()
}

/// Where the monitor stands.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Episode {
    Well,
    /// Something has failed since `since`; not yet long enough to call it degraded.
    Failing {
        since: Ms,
    },
    /// Degraded since `since`, paged about `summary`; `incident` once the store has it.
    Degraded {
        since: Ms,
        summary: String,
        incident: Option<i64>,
        well_since: Option<Ms>,
    },
}

/// The self-monitor.
#[derive(Debug)]
pub struct SelfCheck {
    store: Store,
    policy: LivePolicy,
    health: Arc<Health>,
    sender: Sender,
    episode: Episode,
}

impl SelfCheck {
    pub fn new(store: Store, policy: LivePolicy, health: Arc<Health>, sender: Sender) -> SelfCheck {
        SelfCheck { store, policy, health, sender, episode: Episode::Well }
    }

    /// Run until `stop`.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        // An incident left open by a previous run of this collector is this episode's.
        let mut leftover = self.store.degraded_incident().await.ok().flatten();
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_probe: Ms = 0;
        let started = crate::now_ms();
        let mut next_export = started + 5_000;
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let now = crate::now_ms();
            if now - last_probe >= PROBE_EVERY_MS {
                last_probe = now;
                self.probe(now);
            }
            let verdict = self.health.verdict(now);
            if let Some(id) = leftover.take() {
                self.episode = Episode::Degraded {
                    since: now,
                    summary: "left open by a previous run".into(),
                    incident: Some(id),
                    well_since: None,
                };
            }
            self.step(&verdict, now).await;
            let export = self.policy.current().audit_export.clone();
            if now >= next_export && !export.targets.is_empty() {
                next_export = now + export.every_ms;
                self.export_head(now).await;
            }
        }
    }

    /// Send the audit head to `[audit] export`.
    async fn export_head(&self, now: Ms) {
        let line = match self.store.audit_head_line(now).await {
            Ok(line) => line,
            Err(error) => {
                tracing::error!(error = %common::report(&error), "cannot read the audit head to export it");
                return;
            }
        };
        let subject = "Vakt audit head";
        let body = format!(
            "Keep this line: `vakt-collector audit verify --head '{line}'` proves later that the audit trail still holds every record up to it.\n\n{line}\n"
        );
        let data = serde_json::json!({ "kind": "audit-head", "head": line, "at_ms": now });
        let policy = self.policy.current();
        for target in &policy.audit_export.targets {
            for (who, delivery) in policy.deliveries(target, now) {
                let payload = crate::rules::escalation::payload(&delivery, subject, &body, data.clone());
                match self.sender.deliver_now(&delivery, subject, &body, &payload).await {
                    Ok(()) => tracing::info!(to = %who, "audit head exported"),
                    Err(error) => tracing::error!(to = %who, error = %error, "audit head export failed"),
                }
            }
        }
    }

    /// One probe write, off this task: a hung store must not stop the monitor itself.
    fn probe(&self, now: Ms) {
        let (store, health) = (self.store.clone(), self.health.clone());
        tokio::spawn(async move {
            match tokio::time::timeout(PROBE_TIMEOUT, store.probe_write(now)).await {
                Ok(Ok(())) => health.store_ok(Writer::Probe, crate::now_ms()),
                Ok(Err(error)) => health.store_failed(Writer::Probe, crate::now_ms(), &common::report(&error)),
                Err(_) => health.store_failed(Writer::Probe, crate::now_ms(), "a write has not finished in 10 s"),
            }
        });
    }

    async fn step(&mut self, verdict: &Verdict, now: Ms) {
        let after = self.policy.current().self_monitor.degraded_after_ms;
        match (&mut self.episode, verdict.ready()) {
            (Episode::Well, true) => {}
            (Episode::Well, false) => self.episode = Episode::Failing { since: now },
            (Episode::Failing { .. }, true) => self.episode = Episode::Well,
            (Episode::Failing { since }, false) => {
                if now - *since >= after {
                    let summary = verdict.summary();
                    tracing::error!(problems = %summary, "collector degraded: paging");
                    let since = *since;
                    self.page(&format!("Vakt collector degraded: {summary}"), &degraded_body(&summary, since)).await;
                    self.episode = Episode::Degraded { since, summary, incident: None, well_since: None };
                }
            }
            (Episode::Degraded { summary, well_since, .. }, false) => {
                *well_since = None;
                let now_summary = verdict.summary();
                let parts =
                    |s: &str| s.split("; ").map(|p| p.split(':').next().unwrap_or("").to_string()).collect::<Vec<_>>();
                if parts(&now_summary) != parts(summary) {
                    tracing::error!(problems = %now_summary, "collector still degraded, now: {now_summary}");
                    *summary = now_summary;
                }
            }
            (Episode::Degraded { well_since, .. }, true) => {
                let since = *well_since.get_or_insert(now);
                if now - since >= RECOVERED_AFTER_MS {
                    self.recover(now).await;
                    return;
                }
            }
        }
        self.record(now).await;
    }

    /// While degraded: get the incident into the store as soon as it takes it.
    async fn record(&mut self, now: Ms) {
        let Episode::Degraded { since, summary, incident: incident @ None, .. } = &mut self.episode else { return };
        let title = format!("Collector degraded: {}", truncate(summary, 160));
        let meta = Meta {
            severity: Severity::Critical,
            urgency: Urgency::Page,
            runbook: None,
            components: Vec::new(),
            // The direct page was the page; no escalation through the store.
            escalation: None,
            team: None,
            muted: None,
        };
        let who = system();
        // A manual incident opened by `system`: the store's incident sources are the engine's,
        // manual and ticket.
        let opened = self
            .store
            .open_manual(&title, Severity::Critical, crate::model::Source::Manual, &[], &meta, &who, now)
            .await;
        match opened {
            Ok(id) => {
                let note = format!(
                    "Raised by the collector's self-monitor: failing since {} ({}). Paged directly: {}.",
                    humantime::format_rfc3339_seconds(ms_time(*since)),
                    summary,
                    self.policy.current().self_monitor_targets().join(", ")
                );
                let _ = self.store.add_note(id, &note, &who, now).await;
                let _ = self.store.set_degraded_incident(Some(id)).await;
                tracing::info!(incident = id, "recorded the collector's degraded state as an incident");
                *incident = Some(id);
            }
            // The store may be the problem: try again next second.
            Err(error) => {
                tracing::info!(error = %common::report(&error), "cannot record the degraded incident yet; retrying")
            }
        }
    }

    async fn recover(&mut self, now: Ms) {
        let Episode::Degraded { since, incident, .. } = std::mem::replace(&mut self.episode, Episode::Well) else {
            return;
        };
        let lasted = (now - since) / 1000;
        tracing::info!(lasted_s = lasted, "collector recovered");
        self.page("Vakt collector recovered", &format!("Every part of the collector works again, after {lasted} s.\n"))
            .await;
        if let Some(id) = incident {
            let who = system();
            match self.store.resolve(id, &who, now).await {
                Ok(_) => {
                    let _ = self.store.set_degraded_incident(None).await;
                }
                Err(error) => {
                    tracing::warn!(error = %common::report(&error), incident = id, "could not resolve the degraded incident; it stays open");
                }
            }
        }
    }

    /// Page every target directly, each delivery once, errors logged (there is no log to retry
    /// from: the next page is the recovery, or the next episode).
    async fn page(&self, subject: &str, body: &str) {
        let now = crate::now_ms();
        let policy = self.policy.current();
        let targets = policy.self_monitor_targets();
        if targets.is_empty() {
            tracing::warn!(
                "nobody to page about the collector's state: set [self_monitor] notify or a default escalation"
            );
        }
        let data = serde_json::json!({ "kind": "collector", "subject": subject, "at_ms": now });
        for target in targets {
            for (who, delivery) in policy.deliveries(&target, now) {
                let payload = crate::rules::escalation::payload(&delivery, subject, body, data.clone());
                match self.sender.deliver_now(&delivery, subject, body, &payload).await {
                    Ok(()) => tracing::info!(to = %who, delivery = %delivery.label(), "self-monitor page sent"),
                    Err(error) => tracing::error!(to = %who, error = %error, "self-monitor page failed"),
                }
            }
        }
    }
}

fn degraded_body(summary: &str, since: Ms) -> String {
    format!(
        "The Vakt collector cannot do its job since {}:\n\n{}\n\nResults may not be stored or incidents not opened until this clears. \
         Check /readyz and the collector's log.\n",
        humantime::format_rfc3339_seconds(ms_time(since)),
        summary.replace("; ", "\n")
    )
}

fn ms_time(ms: Ms) -> std::time::SystemTime {
    std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn truncate(text: &str, max: usize) -> String {
    text.chars().take(max).collect()
}
