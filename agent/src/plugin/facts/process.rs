//! Processes. Scanning /proc is the most expensive fact, so the list is refreshed at most once
//! per cache period and only with the fields the interface returns.

use sysinfo::{ProcessRefreshKind, ProcessStatus, ProcessesToUpdate, UpdateKind};
use tokio::time::Instant;

use super::{FactError, Facts};
use crate::plugin::bindings::system::Process;

/// The interface promises at most this many processes per call.
const MAX_PROCESSES: usize = 10_000;

fn state_name(status: ProcessStatus) -> &'static str {
    match status {
        ProcessStatus::Run => "running",
        ProcessStatus::Sleep | ProcessStatus::Idle => "sleeping",
        ProcessStatus::Stop => "stopped",
        ProcessStatus::Zombie => "zombie",
        ProcessStatus::Dead => "dead",
        ProcessStatus::UninterruptibleDiskSleep => "disk-sleep",
        ProcessStatus::Tracing => "tracing",
        _ => "other",
    }
}

/// Whether a process passes a plugin's filter: its name, one argument or the whole command line
/// contains the text.
fn matches_parts(name: &str, cmd: &[String], filter: &str) -> bool {
    name.contains(filter) || cmd.iter().any(|a| a.contains(filter)) || cmd.join(" ").contains(filter)
}

/// [`matches_parts`] for a process already listed (a facts file's).
pub(crate) fn matches(process: &Process, filter: &str) -> bool {
    matches_parts(&process.name, &process.cmd, filter)
}

impl Facts {
    pub(crate) fn processes(&self, filter: Option<&str>) -> Result<Vec<Process>, FactError> {
        self.with(|inner| {
            if self.stale(inner.processes_at) {
                let kind = ProcessRefreshKind::nothing()
                    .with_cpu()
                    .with_memory()
                    .with_cmd(UpdateKind::OnlyIfNotSet)
                    .with_user(UpdateKind::OnlyIfNotSet)
                    .without_tasks();
                inner.system.refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
                inner.processes_at = Some(Instant::now());
            }
            let mut list: Vec<Process> = inner
                .system
                .processes()
                .values()
                .filter_map(|p| {
                    let name = p.name().to_string_lossy().into_owned();
                    let cmd: Vec<String> = p.cmd().iter().map(|a| a.to_string_lossy().into_owned()).collect();
                    if filter.is_some_and(|f| !matches_parts(&name, &cmd, f)) {
                        return None;
                    }
                    Some(Process {
                        pid: p.pid().as_u32(),
                        parent_pid: p.parent().map(|pid| pid.as_u32()),
                        name,
                        cmd,
                        uid: p.user_id().map(|uid| **uid),
                        memory_bytes: p.memory(),
                        cpu_percent: f64::from(p.cpu_usage()),
                        state: state_name(p.status()).to_string(),
                        run_seconds: p.run_time(),
                    })
                })
                .take(MAX_PROCESSES)
                .collect();
            list.sort_by_key(|p| p.pid);
            Ok(list)
        })
    }
}
