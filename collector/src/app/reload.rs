//! `systemctl reload` (SIGHUP): read the config file again and put its policy in force —
//! rules, teams, escalations, channels, components, maintenance, `[smtp]`, `[public]`, the
//! self-monitor and the engine's settings — without dropping the broker link, the HTTP
//! listener or anything in hand.
//!
//! A file that does not parse or validate changes nothing: the collector keeps the policy it
//! runs on, logs why, counts it on `/metrics`, shows it on the dashboard and writes it to the
//! audit trail. Changes to `[mqtt]`, `[store]` and `[http]` are read but wait for a restart,
//! and the log says so. Every part takes one snapshot of the policy per unit of work (see
//! [`LivePolicy`]), so the swap is whole.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tokio::sync::{Notify, watch};

use crate::app::config::{CollectorConfig, ConfigError, RESTART_ONLY};
use crate::app::notify::{Mailer, Sender};
use crate::health::counters::ReloadStats;
use crate::rules::live::LivePolicy;
use crate::rules::policy::Policy;
use crate::store::Store;
use crate::store::audit::{Entry, Who};

/// Where a reload reads the policy from, and what it does to it before use.
pub struct Source {
    /// `None` under `up` without `--config`: the default policy, read again.
    pub path: Option<PathBuf>,
    /// `up` reads a policy file, which must not name a broker of its own.
    pub for_up: bool,
    /// The restart-only sections the collector started with.
    pub started: toml::Table,
    /// What every read policy gets before it is put in force (under `up`: the local agent's
    /// checks as the status page's components when the file names none).
    pub prepare: Box<dyn Fn(&mut Policy) + Send + Sync>,
}

/// Reloads the policy from its file into the running collector.
pub struct Reload {
    pub source: Source,
    pub live: LivePolicy,
    pub sender: Sender,
    pub store: Store,
    /// Wakes the public snapshot's refresh (components and maintenance may have changed).
    pub refresh: Arc<Notify>,
    pub stats: Arc<ReloadStats>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Source").field("path", &self.path).field("for_up", &self.for_up).finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Reload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reload").field("source", &self.source).finish_non_exhaustive()
    }
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The restart-only sections that differ from the running ones.
    pub waiting_for_restart: Vec<String>,
}

/// Read `path` the way the collector reads it: for `up`, a policy file without `[mqtt]`.
pub fn load(path: &Path, for_up: bool) -> Result<CollectorConfig, ConfigError> {
    let config = CollectorConfig::load(path)?;
    if for_up && config.mqtt.is_some() {
        return Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            message: "`up` runs its own broker; remove [mqtt] (or use `run --config`)".into(),
        });
    }
    Ok(config)
}

impl Reload {
    /// Listen for SIGHUP until `stop`. The handler is installed before this returns, so a
    /// signal sent once the collector says it runs is never the default (which ends it).
    pub fn listen(self, stop: watch::Receiver<bool>) -> std::io::Result<tokio::task::JoinHandle<()>> {
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())?;
        let mut stop = stop;
        Ok(tokio::spawn(async move {
            loop {
                tokio::select! {
                    got = hangups.recv() => if got.is_none() { return },
                    _ = stop.changed() => return,
                }
                // The outcome is logged, counted and audited inside.
                let _ = self.once().await;
            }
        }))
    }

    /// Read the file and put its policy in force, or keep the running one and say why.
    pub async fn once(&self) -> Result<Applied, String> {
        let outcome = self.apply().await;
        let now = crate::now_ms();
        let path = self
            .source
            .path
            .as_deref()
            .map_or_else(|| "(no file: the default policy)".into(), |p| p.display().to_string());
        let detail = match &outcome {
            Ok(applied) => {
                self.stats.applied();
                if applied.waiting_for_restart.is_empty() {
                    tracing::info!(file = %path, "policy reloaded");
                } else {
                    tracing::warn!(
                        file = %path,
                        sections = %applied.waiting_for_restart.join(", "),
                        "policy reloaded; the changes to these sections take effect at the next restart"
                    );
                }
                serde_json::json!({ "file": path, "waiting_for_restart": applied.waiting_for_restart })
            }
            Err(why) => {
                self.stats.refused(why);
                tracing::error!(file = %path, error = %why, "reload refused; the collector keeps the policy it runs on");
                serde_json::json!({ "file": path, "error": why })
            }
        };
        let entry = Entry {
            action: "policy.reload",
            object: "policy",
            outcome: if outcome.is_ok() { "ok" } else { "refused" },
            detail: &detail.to_string(),
        };
        if let Err(error) = self.store.audit_event(&Who::system(), entry, now).await {
            tracing::error!(error = %common::report(&error), "cannot write the reload to the audit trail");
        }
        outcome
    }

    async fn apply(&self) -> Result<Applied, String> {
        let (mut policy, restart_only) = match &self.source.path {
            Some(path) => {
                let config = load(path, self.source.for_up).map_err(|e| e.to_string())?;
                (config.policy, config.restart_only)
            }
            None => (Policy::default(), toml::Table::new()),
        };
        (self.source.prepare)(&mut policy);
        // Everything that can fail is done before the swap: the file is put in force whole or
        // not at all.
        let mailer = Mailer::of(&policy)?;
        let windows = self
            .store
            .windows(crate::now_ms() - crate::http::public::status::HISTORY_MS)
            .await
            .map_err(|e| format!("reading the maintenance windows: {}", common::report(&e)))?;
        policy.set_windows(&windows);
        self.live.replace(policy);
        self.sender.set_mailer(mailer);
        // A window an operator added between the read above and the swap went to the old
        // policy: read them again into the new one.
        if let Ok(windows) = self.store.windows(crate::now_ms() - crate::http::public::status::HISTORY_MS).await {
            self.live.current().set_windows(&windows);
        }
        self.refresh.notify_one();
        let waiting_for_restart = RESTART_ONLY
            .iter()
            .filter(|section| self.source.started.get(**section) != restart_only.get(**section))
            .map(|section| format!("[{section}]"))
            .collect();
        Ok(Applied { waiting_for_restart })
    }
}
