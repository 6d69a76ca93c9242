//! `vakt-agent run`: the daemon. Loads the config, loads every plugin (a plugin that does not
//! load is reported on its check's schedule; the others run), then schedules the checks and
//! writes each result as a JSON line to stdout until SIGTERM or SIGINT.

use std::io::Write;
use std::path::PathBuf;

use tokio::sync::{mpsc, watch};

use super::plugin_source;
use crate::config::{AgentConfig, default_cache_dir};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::scheduler::{self, ScheduledCheck};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("loading the agent config")]
    Config(#[from] crate::config::ConfigError),
    #[error("starting the plugin runtime")]
    Runtime(#[from] crate::plugin::RuntimeError),
}

/// Run until a signal arrives.
pub async fn run(config_path: PathBuf, cache: Option<PathBuf>) -> Result<(), RunError> {
    let config = AgentConfig::load(&config_path)?;
    let runtime = Runtime::new(RuntimeConfig {
        concurrency: config.concurrency,
        max_memory: config.max_memory(),
        cache_dir: Some(cache.or(config.cache_dir.clone()).unwrap_or_else(default_cache_dir)),
        pooling: config.pooling,
        probes: config.probes.clone(),
        ehlo_name: config.ehlo_name.clone().unwrap_or_else(|| RuntimeConfig::default().ehlo_name),
        ..RuntimeConfig::default()
    })?;
    tracing::info!(agent = %config.agent_id, checks = config.checks.len(), allocator = %runtime.allocator(), "agent starting");

    let mut scheduled = Vec::new();
    for check in &config.checks {
        let plugin = match plugin_source(&check.plugin, check.sha256.clone()) {
            Ok(source) => runtime.load(source).await.map_err(|e| crate::report(&e)),
            Err(error) => Err(error),
        };
        match &plugin {
            Ok(p) => {
                tracing::info!(check = %check.name, plugin = %check.plugin, sha256 = p.sha256(), cache = ?p.cache_use(), "plugin loaded")
            }
            Err(error) => {
                tracing::error!(check = %check.name, plugin = %check.plugin, error = %error, "plugin did not load")
            }
        }
        scheduled.push(ScheduledCheck { config: check.clone(), plugin });
    }

    let (results_tx, mut results_rx) = mpsc::channel(256);
    let (stop_tx, stop_rx) = watch::channel(false);
    let scheduler = tokio::spawn(scheduler::run(scheduled, config.concurrency, config.quarantine, results_tx, stop_rx));
    let agent = config.agent_id.clone();
    let printer = tokio::spawn(async move {
        let stdout = std::io::stdout();
        while let Some(run) = results_rx.recv().await {
            let result = run.into_result(&agent);
            let Ok(line) = serde_json::to_string(&result) else { continue };
            let mut out = stdout.lock();
            // A closed stdout (the reader went away) is not a reason to stop checking.
            let _ = writeln!(out, "{line}").and_then(|()| out.flush());
        }
    });

    shutdown_signal().await;
    tracing::info!("stopping: waiting for running checks to finish");
    let _ = stop_tx.send(true);
    let _ = scheduler.await;
    let _ = printer.await;
    tracing::info!("agent stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(error) => {
            tracing::error!(error = %error, "cannot listen for SIGTERM");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
