//! `dns`: look a name up and optionally compare the answers, like `check_dns`.
//!
//! Config: `name` (required), `type` (`a`, `aaaa`, `cname`, `mx`, `ns`, `txt`, `srv`, `soa`,
//! `ptr`, `caa`; default `a`), `server` (`IP:PORT` of a DNS server to ask instead of the host's
//! resolver), `expect` (answers that must all be present, separated by commas), `timeout`
//! (default `5s`), `warning` and `critical` (Nagios ranges on lookup time in ms). No answer,
//! NXDOMAIN or a missing expected answer is critical. Needs a `net` grant covering
//! `name:53` (and `server` if set).

use std::time::Instant;

use vakt_plugin_sdk::host::net::{self, RecordKind};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Status, Thresholds, export_check,
    unreachable,
};

struct Dns;

impl Check for Dns {
    const NAME: &'static str = "dns";
    const DESCRIPTION: &'static str = "Looks up a DNS name and checks the answers and the lookup time.";
    const NEEDS: &'static [Capability] = &[Capability::Net];
    const CONFIG: &'static [Key] = &[
        Key::required("name", "name to look up, e.g. example.com"),
        Key::with_default("type", "a", "record type: a, aaaa, cname, mx, ns, txt, srv, soa, ptr, caa"),
        Key::optional("server", "DNS server to ask, IP:PORT (default: the host's resolver)"),
        Key::optional("expect", "answers that must all be present, separated by commas"),
        Key::with_default("timeout", "5s", "give up after this long"),
        Key::optional("warning", "warning range for lookup time, ms (Nagios range)"),
        Key::optional("critical", "critical range for lookup time, ms (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let name = config.text("name")?;
        let kind = record_kind(config.text("type")?)?;
        let expect: Vec<&str> = config
            .get("expect")
            .map(|e| e.split(',').map(str::trim).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default();
        let timeout_ms = config.duration("timeout")?.as_millis().min(u128::from(u32::MAX)) as u32;
        let started = Instant::now();
        let answers = net::dns_resolve(name, kind, config.get("server"), timeout_ms);
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        evaluate(name, &expect, &config.thresholds()?, answers, ms)
    }
}

fn record_kind(text: &str) -> Result<RecordKind, CheckError> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "a" => RecordKind::A,
        "aaaa" => RecordKind::Aaaa,
        "cname" => RecordKind::Cname,
        "mx" => RecordKind::Mx,
        "ns" => RecordKind::Ns,
        "txt" => RecordKind::Txt,
        "srv" => RecordKind::Srv,
        "soa" => RecordKind::Soa,
        "ptr" => RecordKind::Ptr,
        "caa" => RecordKind::Caa,
        other => return Err(CheckError::BadConfig(format!("key `type`: unknown record type `{other}`"))),
    })
}

/// Answers match case-insensitively and without a trailing dot, so `mail.example.com`
/// matches the presentation form `mail.example.com.`.
fn same_answer(a: &str, b: &str) -> bool {
    a.trim_end_matches('.').eq_ignore_ascii_case(b.trim_end_matches('.'))
}

fn evaluate(
    name: &str,
    expect: &[&str],
    thresholds: &Thresholds,
    answers: Result<Vec<String>, HostError>,
    ms: f64,
) -> Result<Outcome, CheckError> {
    let answers = match answers {
        Ok(answers) => answers,
        Err(error) => return unreachable(name, error),
    };
    let ms = (ms * 10.0).round() / 10.0;
    let time = Metric::new("time", ms).unit("ms").thresholds(thresholds).min(0.0);
    if answers.is_empty() {
        return Ok(Outcome::new(Status::Critical, format!("{name} has no records of that type")).metric(time));
    }
    let missing: Vec<&&str> = expect.iter().filter(|e| !answers.iter().any(|a| same_answer(a, e))).collect();
    let listed = answers.join(", ");
    if !missing.is_empty() {
        let missing: Vec<&str> = missing.into_iter().copied().collect();
        return Ok(Outcome::new(Status::Critical, format!("{name} is missing {} (got {listed})", missing.join(", ")))
            .metric(time));
    }
    Ok(Outcome::new(thresholds.evaluate(ms), format!("{name} → {listed} in {ms:.1} ms"))
        .metric(time)
        .metric(Metric::new("answers", answers.len() as f64).min(0.0)))
}

export_check!(Dns);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_answers_must_all_be_present() {
        let t = Thresholds::default();
        let answers = Ok(vec!["192.0.2.1".to_string(), "192.0.2.2".to_string()]);
        assert_eq!(evaluate("x", &["192.0.2.2"], &t, answers.clone(), 1.0).unwrap().status, Status::Ok);
        let out = evaluate("x", &["192.0.2.3"], &t, answers, 1.0).unwrap();
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.contains("missing 192.0.2.3"), "{}", out.summary);
    }

    #[test]
    fn names_compare_without_trailing_dot_or_case() {
        assert!(same_answer("Mail.Example.com.", "mail.example.com"));
        assert!(!same_answer("mail.example.com", "mail.example.org"));
    }

    #[test]
    fn empty_or_failed_lookup_is_critical() {
        let t = Thresholds::default();
        assert_eq!(evaluate("x", &[], &t, Ok(vec![]), 1.0).unwrap().status, Status::Critical);
        let out = evaluate("x", &[], &t, Err(HostError::Failed("NXDOMAIN".into())), 1.0).unwrap();
        assert_eq!(out.status, Status::Critical);
        assert!(record_kind("mx").is_ok() && record_kind("bogus").is_err());
    }
}
