//! `vakt-agent check`: one run of one plugin, Nagios-style.

use std::time::{Duration, SystemTime};

use protocol::{CheckName, CheckResult};

use super::{CheckArgs, Format, cache_dir, plugin_source};
use crate::check::PluginRef;
use crate::config::default_agent_id;
use crate::grant::GrantSet;
use crate::nagios;
use crate::plugin::tape::FactsTape;
use crate::plugin::{RunLimits, RunReport, RunRequest, Runtime, RuntimeConfig};
use crate::scheduler::CheckRun;

/// What to print and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutput {
    pub text: String,
    pub exit_code: i32,
    /// With `--repeat`: timing statistics, for stderr.
    pub timing: Option<String>,
}

fn render(format: Format, service: &str, result: &CheckResult) -> String {
    match format {
        Format::Text => {
            nagios::output(service, result.status, &result.summary, result.details.as_deref(), &result.metrics)
        }
        Format::Json => serde_json::to_string(result).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}")),
    }
}

/// The check's name in the result: the plugin's label when it is a valid name.
fn check_name(service: &str) -> CheckName {
    CheckName::new(service).or_else(|_| CheckName::new("check")).unwrap_or_else(|_| unreachable!("`check` is valid"))
}

/// Run the check described by `args`.
pub async fn check(args: CheckArgs, cache: Option<std::path::PathBuf>) -> CheckOutput {
    let cwd = std::env::current_dir().unwrap_or_default();
    let plugin_ref = PluginRef::parse(&args.plugin, &cwd);
    let label = plugin_ref.label();
    let service = label.trim_end_matches(".wasm").to_string();
    let started = tokio::time::Instant::now();
    let output = |report: RunReport, timing: Option<String>| {
        let run = CheckRun { check: check_name(&service), plugin: label.clone(), finished: SystemTime::now(), report };
        let result = run.into_result(&default_agent_id());
        CheckOutput { text: render(args.format, &service, &result), exit_code: result.status.exit_code(), timing }
    };
    let unknown = |summary: String| output(RunReport::unknown(summary, started.elapsed(), None, 0), None);

    if let PluginRef::File(path) = &plugin_ref
        && !path.exists()
    {
        return unknown(format!(
            "unknown plugin `{}`: not a standard plugin (see `vakt-agent plugins`) and no such file",
            args.plugin
        ));
    }
    let source = match plugin_source(&plugin_ref, args.sha256.clone()) {
        Ok(source) => source,
        Err(error) => return unknown(error),
    };
    let tape = match (&args.facts, &args.record) {
        (Some(file), _) => match FactsTape::replay(file) {
            Ok(tape) => Some(tape),
            Err(error) => return unknown(error),
        },
        (None, Some(_)) => Some(FactsTape::record()),
        (None, None) => None,
    };
    let config = RuntimeConfig {
        concurrency: 1,
        max_memory: args.memory.0,
        cache_dir: cache_dir(cache),
        // A single run does not need the pool (it only reserves address space); repeated runs
        // use it, as the daemon does, so their timings are the daemon's.
        pooling: args.repeat > 1,
        backend: args.backend,
        // With --repeat every run must pay for fresh facts, as a scheduled run does.
        facts_max_age: Duration::ZERO,
        tape: tape.clone(),
        ..RuntimeConfig::default()
    };
    let runtime = match Runtime::new(config) {
        Ok(runtime) => runtime,
        Err(error) => return unknown(common::report(&error)),
    };
    let plugin = match runtime.load(source, args.timeout).await {
        Ok(plugin) => plugin,
        Err(error) => return unknown(common::report(&error)),
    };
    let request = RunRequest {
        check: service.clone(),
        config: args.set.clone(),
        grants: GrantSet::new(args.grant.clone()),
        limits: RunLimits { timeout: args.timeout, memory: args.memory.0, ..RunLimits::default() },
    };
    // Time the whole call, teardown included: that is what a scheduled run costs.
    let mut times = Vec::with_capacity(args.repeat as usize);
    let mut report = None;
    for _ in 0..args.repeat {
        let timed = tokio::time::Instant::now();
        report = Some(plugin.run(&request).await);
        times.push(timed.elapsed());
    }
    let mut report = report.unwrap_or_else(|| RunReport::unknown("no run".into(), Duration::ZERO, None, 0));
    if let (Some(file), Some(tape)) = (&args.record, &tape)
        && let Err(error) = write_new(file, &tape.recorded_json())
    {
        report = RunReport::unknown(format!("recording {}: {error}", file.display()), started.elapsed(), None, 0);
    }
    let how = format!("{}, {}", runtime.backend(), runtime.allocator());
    output(report, (args.repeat > 1).then(|| format!("{} ({how})", timing(&times))))
}

/// Write `text` to `path` whole: into a temporary file beside it, then renamed over it.
fn write_new(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// `N runs: median …, p99 …, mean …` (per run, microseconds).
fn timing(times: &[Duration]) -> String {
    let mut sorted: Vec<f64> = times.iter().map(|t| t.as_secs_f64() * 1e6).collect();
    sorted.sort_by(f64::total_cmp);
    let at = |q: f64| sorted[((sorted.len() - 1) as f64 * q).round() as usize];
    let mean = sorted.iter().sum::<f64>() / sorted.len() as f64;
    format!("{} runs: median {:.1} us, p99 {:.1} us, mean {:.1} us per run", sorted.len(), at(0.5), at(0.99), mean)
}
