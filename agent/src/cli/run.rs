//! `vakt-agent run`: the daemon. Loads the config, loads every plugin (a plugin that does not
//! load is reported on its check's schedule; the others run), then schedules the checks until
//! SIGTERM or SIGINT. With `[mqtt]` in the config every result goes through the spool to the
//! broker; without it each result is written to stdout as a JSON line.

use std::io::Write;
use std::path::PathBuf;

use protocol::CheckInfo;
use tokio::sync::{broadcast, mpsc, watch};

use super::plugin_source;
use crate::config::{AgentConfig, default_cache_dir};
use crate::plugin::{Runtime, RuntimeConfig};
use crate::publish::{self, Publisher};
use crate::scheduler::{self, PluginLoad, ScheduledCheck};
use crate::spool::Spool;

/// Hold an exclusive lock on `dir/lock` for as long as the returned file lives, so two agents
/// never share an epoch and a spool.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, RunError> {
    let io = |source| RunError::StateDir { path: dir.to_path_buf(), source };
    std::fs::create_dir_all(dir).map_err(io)?;
    let file =
        std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(dir.join("lock")).map_err(io)?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(rustix::io::Errno::WOULDBLOCK) => Err(RunError::Locked(dir.to_path_buf())),
        Err(errno) => Err(io(errno.into())),
    }
}

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("loading the agent config")]
    Config(#[from] crate::config::ConfigError),
    #[error("starting the plugin runtime")]
    Runtime(#[from] crate::plugin::RuntimeError),
    #[error("opening the spool")]
    Spool(#[from] crate::spool::SpoolError),
    #[error("publishing")]
    Publish(#[from] crate::publish::PublishError),
    #[error("state directory {path}")]
    StateDir { path: PathBuf, source: std::io::Error },
    #[error("state directory {0} is in use by another vakt-agent")]
    Locked(PathBuf),
}

/// Run until a signal arrives.
pub async fn run(config_path: PathBuf, cache: Option<PathBuf>) -> Result<(), RunError> {
    let config = AgentConfig::load(&config_path)?;
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::spawn(async move {
        shutdown_signal().await;
        tracing::info!("stopping: waiting for running checks to finish");
        let _ = stop_tx.send(true);
    });
    run_config(config, cache, stop_rx).await
}

/// Run an agent with `config` until `stop` turns true (also used in-process by
/// `vakt-collector up`).
pub async fn run_config(
    config: AgentConfig,
    cache: Option<PathBuf>,
    stop_rx: watch::Receiver<bool>,
) -> Result<(), RunError> {
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

    // Plugins are read here but loaded by their checks' tasks, in parallel: a slow plugin
    // holds up nobody else's schedule. The birth announces each plugin's sha256 from its bytes.
    let mut scheduled = Vec::new();
    let mut digests = Vec::new();
    for check in &config.checks {
        let plugin = match plugin_source(&check.plugin, check.sha256.clone()) {
            Ok(source) => {
                digests.push(source.digest());
                PluginLoad::Pending { runtime: runtime.clone(), source }
            }
            Err(error) => {
                tracing::error!(check = %check.name, plugin = %check.plugin, error = %error, "plugin did not load");
                digests.push(String::new());
                PluginLoad::Failed(error)
            }
        };
        scheduled.push(ScheduledCheck { config: check.clone(), plugin });
    }

    let (results_tx, mut results_rx) = mpsc::channel(256);
    let (run_now_tx, _) = broadcast::channel(16);

    if let Some(mqtt) = config.mqtt.clone() {
        let _lock = lock_state_dir(&config.state_dir)?;
        let spool = Spool::open(config.spool.clone())?;
        tracing::info!(
            dir = %config.spool.dir.display(),
            next_seq = spool.next_seq(),
            acked = spool.acked(),
            "spool open"
        );
        let checks = scheduled
            .iter()
            .zip(digests)
            .map(|(s, sha256)| CheckInfo {
                check: s.config.name.clone(),
                plugin: s.config.plugin.label(),
                sha256,
                interval_ms: s.config.interval.as_millis() as u64,
            })
            .collect();
        let birth = publish::birth(checks, mqtt.heartbeat, mqtt.encoding);
        let publisher =
            Publisher::new(mqtt, config.agent_id.clone(), spool, &config.state_dir, birth, run_now_tx.clone())?;
        let scheduler = tokio::spawn(scheduler::run(
            scheduled,
            config.concurrency,
            config.quarantine,
            results_tx,
            run_now_tx,
            stop_rx,
        ));
        // The publisher ends after the scheduler has dropped its sender and the spool is
        // flushed (or the grace time is over).
        let published = publisher.run(results_rx).await;
        let _ = scheduler.await;
        published?;
        tracing::info!("agent stopped");
        return Ok(());
    }

    let scheduler =
        tokio::spawn(scheduler::run(scheduled, config.concurrency, config.quarantine, results_tx, run_now_tx, stop_rx));
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
