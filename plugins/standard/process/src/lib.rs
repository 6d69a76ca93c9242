//! `process`: how many processes match, like `check_procs`.
//!
//! Config: `name` (exact process name, e.g. `postgres`) or `command` (text the command line
//! contains, e.g. `gunicorn app:main`); one of the two is required. `warning` and `critical`
//! are Nagios ranges on the count; the default critical `1:` alerts when none runs.

use vakt_plugin_sdk::host::system::{self, Process as HostProcess};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, Key, Metric, Outcome, Thresholds, bytes_human, export_check,
};

struct Process;

/// What a process must match.
enum Matcher<'a> {
    Name(&'a str),
    Command(&'a str),
}

impl Matcher<'_> {
    fn matches(&self, process: &HostProcess) -> bool {
        match self {
            Matcher::Name(name) => process.name == *name,
            Matcher::Command(text) => process.cmd.join(" ").contains(text),
        }
    }

    fn describe(&self) -> String {
        match self {
            Matcher::Name(name) => format!("named `{name}`"),
            Matcher::Command(text) => format!("with `{text}` in the command line"),
        }
    }
}

impl Check for Process {
    const NAME: &'static str = "process";
    const DESCRIPTION: &'static str = "Counts processes by name or command line, like check_procs.";
    const NEEDS: &'static [Capability] = &[Capability::System];
    const CONFIG: &'static [Key] = &[
        Key::optional("name", "exact process name, e.g. postgres"),
        Key::optional("command", "text the command line contains, e.g. `gunicorn app:main`"),
        Key::optional("warning", "warning range for the count (Nagios range)"),
        Key::with_default("critical", "1:", "critical range for the count (Nagios range); 1: = at least one"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let matcher = match (config.get("name"), config.get("command")) {
            (Some(name), None) => Matcher::Name(name),
            (None, Some(command)) => Matcher::Command(command),
            _ => return Err(CheckError::BadConfig("set exactly one of `name` or `command`".into())),
        };
        let filter = match matcher {
            Matcher::Name(name) => name,
            Matcher::Command(text) => text,
        };
        let processes = system::processes(Some(filter))?;
        Ok(evaluate(&matcher, &config.thresholds()?, &processes))
    }
}

fn evaluate(matcher: &Matcher<'_>, thresholds: &Thresholds, processes: &[HostProcess]) -> Outcome {
    let matching: Vec<&HostProcess> = processes.iter().filter(|p| matcher.matches(p)).collect();
    let count = matching.len();
    let rss: u64 = matching.iter().map(|p| p.memory_bytes).sum();
    let cpu: f64 = matching.iter().map(|p| p.cpu_percent).sum();
    let zombies = matching.iter().filter(|p| p.state == "zombie").count();
    let mut summary = format!("{count} process{} {}", if count == 1 { "" } else { "es" }, matcher.describe());
    if count > 0 {
        summary.push_str(&format!(", {} resident, {cpu:.1}% cpu", bytes_human(rss)));
    }
    if zombies > 0 {
        summary.push_str(&format!(", {zombies} zombie"));
    }
    Outcome::new(thresholds.evaluate(count as f64), summary)
        .metric(Metric::new("count", count as f64).thresholds(thresholds).min(0.0))
        .metric(Metric::new("rss", rss as f64).unit("B").min(0.0))
        .metric(Metric::new("cpu", (cpu * 10.0).round() / 10.0).unit("%").min(0.0))
}

export_check!(Process);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::Status;

    fn proc(name: &str, cmd: &[&str]) -> HostProcess {
        HostProcess {
            pid: 1,
            parent_pid: None,
            name: name.into(),
            cmd: cmd.iter().map(|s| s.to_string()).collect(),
            uid: Some(0),
            memory_bytes: 1024,
            cpu_percent: 0.5,
            state: "sleeping".into(),
            run_seconds: 10,
        }
    }

    #[test]
    fn default_critical_alerts_when_none_runs() {
        let t = Thresholds { warning: None, critical: Some("1:".parse().unwrap()) };
        let list = [proc("postgres", &["postgres", "-D", "/data"]), proc("postgres-x", &[])];
        let out = evaluate(&Matcher::Name("postgres"), &t, &list);
        assert_eq!(out.status, Status::Ok);
        assert!(out.summary.starts_with("1 process named `postgres`"), "{}", out.summary);
        let none = evaluate(&Matcher::Name("nginx"), &t, &list);
        assert_eq!(none.status, Status::Critical);
        assert_eq!(none.metrics[0].value, 0.0);
    }

    #[test]
    fn command_matches_inside_the_command_line() {
        let list = [proc("python3", &["python3", "-m", "gunicorn", "app:main"])];
        let out = evaluate(&Matcher::Command("gunicorn app:main"), &Thresholds::default(), &list);
        assert_eq!(out.metrics[0].value, 1.0);
    }
}
