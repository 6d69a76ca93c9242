//! One run of a check: a fresh `Store` with the memory limiter and the deadline, the call,
//! and the translation of whatever happened into a `RunReport`.

use std::sync::Arc;
use std::time::Duration;

use protocol::text as sanitise;
use tokio::time::Instant;
use wasmtime::{Store, UpdateDeadline};

use super::capability::Access;
use super::limits::MemoryLimitExceeded;
use super::output::{CapturedOutput, Stdio};
use super::state::PluginState;
use super::{Fault, Plugin, RunLimits, RunReport, RunRequest, bindings, convert};

/// Bytes of a plugin's stdout and of its stderr kept per run for the agent's log.
const CAPTURED_OUTPUT_BYTES: usize = 8 << 10;

/// The error the epoch callback traps with once the deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub(super) struct DeadlineExceeded;

impl Plugin {
    pub(super) fn store(
        &self,
        access: Access,
        limits: &RunLimits,
        deadline: Instant,
        check: Arc<str>,
    ) -> (Store<PluginState>, Stdio) {
        let stdio = Stdio::new(CAPTURED_OUTPUT_BYTES);
        let state = PluginState::new(
            access,
            self.runtime.inner.services.clone(),
            deadline,
            limits.memory,
            check,
            &stdio,
            self.runtime.inner.ticker.guard(),
        );
        let mut store = Store::new(&self.runtime.inner.engine, state);
        store.limiter(|state| &mut state.limiter);
        // Every epoch tick the plugin yields to the executor, so a busy loop shares its worker;
        // once the deadline has passed it traps.
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(move |_| {
            if Instant::now() >= deadline {
                Err(wasmtime::Error::new(DeadlineExceeded))
            } else {
                Ok(UpdateDeadline::Yield(1))
            }
        });
        (store, stdio)
    }

    /// Run the check once in a fresh instance.
    pub async fn run(&self, request: &RunRequest) -> RunReport {
        let started = Instant::now();
        let deadline = started + request.limits.timeout;
        let check: Arc<str> = Arc::from(request.check.as_str());
        let access = Access::new(self.info.needs.clone(), request.grants.clone(), self.standard);
        let (mut store, stdio) = self.store(access, &request.limits, deadline, check.clone());
        let config = request.config.clone();
        let call = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, &config).await
        };
        let result = tokio::time::timeout_at(deadline, call).await;
        let duration = started.elapsed();
        let peak = store.data().limiter.peak();
        let dropped_logs = store.data().logs_dropped;
        drop(store);
        log_captured(&check, &stdio, dropped_logs);

        let report = match result {
            Err(_) => RunReport::unknown(
                format!(
                    "no result within the deadline of {:?} (the plugin was blocked in a host call)",
                    request.limits.timeout
                ),
                duration,
                Some(Fault::Deadline(request.limits.timeout)),
                peak,
            ),
            Ok(Err(error)) => {
                let fault = classify(&error, &stdio.stderr, request.limits.timeout);
                RunReport::unknown(
                    sanitise::line(&fault.to_string(), request.limits.summary_bytes),
                    duration,
                    Some(fault),
                    peak,
                )
            }
            Ok(Ok(Err(check_error))) => {
                let summary = match check_error {
                    bindings::CheckError::BadConfig(why) => format!("bad config: {why}"),
                    bindings::CheckError::Denied(why) => format!("denied: {why}"),
                    bindings::CheckError::Failed(why) => format!("check failed: {why}"),
                };
                RunReport::unknown(sanitise::line(&summary, request.limits.summary_bytes), duration, None, peak)
            }
            Ok(Ok(Ok(outcome))) => match convert::outcome(outcome, &request.limits) {
                Ok(checked) => RunReport {
                    status: checked.status,
                    summary: checked.summary,
                    details: checked.details,
                    metrics: checked.metrics,
                    duration,
                    fault: None,
                    peak_memory: peak,
                },
                Err(violation) => {
                    let fault = Fault::Output(violation);
                    RunReport::unknown(fault.to_string(), duration, Some(fault), peak)
                }
            },
        };
        tracing::debug!(check = %check, status = %report.status, elapsed_ms = duration.as_secs_f64() * 1000.0, peak_memory = peak, "check run finished");
        report
    }
}

/// What the plugin last said on stderr: for a Rust plugin that panicked, the panic location
/// and message, which explain an otherwise bare `unreachable` trap.
fn stderr_hint(stderr: &CapturedOutput) -> Option<String> {
    let (text, _) = stderr.snapshot();
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let hint = match lines.iter().rposition(|l| l.contains("panicked at")) {
        Some(at) => lines[at..].iter().take(2).copied().collect::<Vec<_>>().join(" "),
        None => lines.iter().rev().find(|l| !l.starts_with("note: run with"))?.to_string(),
    };
    Some(sanitise::line(&hint, 300))
}

/// What went wrong, on one line: the trap (whose backtrace names the plugin's own functions,
/// so it is plugin-controlled text too) and the stderr hint, both sanitised.
pub(super) fn describe_error(error: &wasmtime::Error, stderr: &CapturedOutput) -> String {
    let text = match error.downcast_ref::<wasmtime::Trap>() {
        Some(trap) => trap.to_string(),
        None => error.root_cause().to_string(),
    };
    let mut text = sanitise::line(&text, 600);
    if let Some(line) = stderr_hint(stderr) {
        text.push_str(&format!(" (stderr: {line})"));
    }
    text
}

fn classify(error: &wasmtime::Error, stderr: &CapturedOutput, timeout: Duration) -> Fault {
    if error.is::<DeadlineExceeded>() {
        return Fault::Deadline(timeout);
    }
    if let Some(exceeded) = error.downcast_ref::<MemoryLimitExceeded>() {
        return Fault::Memory(exceeded.to_string());
    }
    Fault::Trap(describe_error(error, stderr))
}

fn log_captured(check: &str, stdio: &Stdio, dropped_logs: u32) {
    for (stream, captured) in [("stdout", &stdio.stdout), ("stderr", &stdio.stderr)] {
        let (text, dropped) = captured.snapshot();
        if !text.is_empty() || dropped > 0 {
            let output = sanitise::log(text.trim_end(), CAPTURED_OUTPUT_BYTES);
            tracing::info!(check, stream, dropped_bytes = dropped, output = %output, "plugin output");
        }
    }
    if dropped_logs > 0 {
        tracing::warn!(check, dropped_logs, "plugin wrote more log messages than allowed per run");
    }
}
