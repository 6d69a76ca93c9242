//! `http`: one HTTP(S) request; status code, optional body text and response time, like
//! `check_http`.
//!
//! Config: `url` (required, `http://` or `https://`), `method` (default `GET`), `status`
//! (accepted status codes, e.g. `200`, `200-299,301`; default `200-399`), `contains` (text the
//! body must contain, searched in its first 64 KiB), `headers` (extra request headers,
//! `Name: value` pairs separated by `|`), `body` (request body), `timeout` (default `10s`),
//! `warning` and `critical` (Nagios ranges on total time in ms), `insecure` (default `false`:
//! a certificate that does not verify is critical). Needs a `net` grant covering the URL's
//! `host:port`.

use vakt_plugin_sdk::host::net::{self, HttpProbe, HttpReply};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Status, Thresholds, export_check,
    unreachable, worst,
};

struct Http;

impl Check for Http {
    const NAME: &'static str = "http";
    const DESCRIPTION: &'static str = "Makes an HTTP(S) request and checks status, body and response time.";
    const NEEDS: &'static [Capability] = &[Capability::Net];
    const CONFIG: &'static [Key] = &[
        Key::required("url", "URL to request, e.g. https://example.com/health"),
        Key::with_default("method", "GET", "request method"),
        Key::with_default("status", "200-399", "accepted status codes, e.g. 200 or 200-299,301"),
        Key::optional("contains", "text the response body must contain"),
        Key::optional("headers", "extra request headers, `Name: value` pairs separated by |"),
        Key::optional("body", "request body"),
        Key::with_default("timeout", "10s", "give up after this long"),
        Key::optional("warning", "warning range for total time, ms (Nagios range)"),
        Key::optional("critical", "critical range for total time, ms (Nagios range)"),
        Key::with_default("insecure", "false", "accept a certificate that does not verify"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let accepted = StatusSet::parse(config.text("status")?)?;
        let contains = config.get("contains");
        let insecure = config.flag("insecure")?;
        let probe = HttpProbe {
            method: config.text("method")?.to_ascii_uppercase(),
            url: config.text("url")?.to_string(),
            headers: parse_headers(config.get("headers").unwrap_or(""))?,
            body: config.get("body").map(str::to_string),
            want_headers: vec!["content-type".into(), "location".into()],
            body_limit: if contains.is_some() { 65_536 } else { 512 },
            insecure,
            timeout_ms: config.duration("timeout")?.as_millis().min(u128::from(u32::MAX)) as u32,
        };
        let url = probe.url.clone();
        let rules = Rules { accepted, contains, insecure, thresholds: config.thresholds()? };
        rules.evaluate(&url, net::http_request(&probe))
    }
}

/// Accepted status codes: a list of single codes and inclusive ranges.
#[derive(Debug)]
struct StatusSet(Vec<(u16, u16)>);

impl StatusSet {
    fn parse(text: &str) -> Result<StatusSet, CheckError> {
        let bad = || CheckError::BadConfig(format!("key `status`: `{text}` is not a list of codes like 200-299,301"));
        let mut ranges = Vec::new();
        for part in text.split(',').map(str::trim) {
            let (low, high) = match part.split_once('-') {
                Some((low, high)) => (low.trim().parse().map_err(|_| bad())?, high.trim().parse().map_err(|_| bad())?),
                None => {
                    let code = part.parse().map_err(|_| bad())?;
                    (code, code)
                }
            };
            if low > high || !(100..=599).contains(&low) || high > 599 {
                return Err(bad());
            }
            ranges.push((low, high));
        }
        Ok(StatusSet(ranges))
    }

    fn accepts(&self, code: u16) -> bool {
        self.0.iter().any(|&(low, high)| (low..=high).contains(&code))
    }
}

fn parse_headers(text: &str) -> Result<Vec<(String, String)>, CheckError> {
    text.split('|')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| {
            let (name, value) = part
                .split_once(':')
                .ok_or_else(|| CheckError::BadConfig(format!("key `headers`: `{part}` is not `Name: value`")))?;
            Ok((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

struct Rules<'a> {
    accepted: StatusSet,
    contains: Option<&'a str>,
    insecure: bool,
    thresholds: Thresholds,
}

impl Rules<'_> {
    fn evaluate(&self, url: &str, reply: Result<HttpReply, HostError>) -> Result<Outcome, CheckError> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return unreachable(url, error),
        };
        let ms = (reply.total_ms * 10.0).round() / 10.0;
        let mut status = self.thresholds.evaluate(ms);
        let mut problems = Vec::new();
        if !self.accepted.accepts(reply.status) {
            status = Status::Critical;
            problems.push(format!("unexpected status {}", reply.status));
        }
        if let Some(text) = self.contains
            && !reply.body.contains(text)
        {
            status = Status::Critical;
            problems.push(format!("body does not contain `{text}`"));
        }
        if reply.tls_verified == Some(false) && !self.insecure {
            status = worst(status, Status::Critical);
            problems.push("certificate did not verify".to_string());
        }
        let mut summary = format!("{} {} in {ms:.0} ms", reply.status, url);
        if !problems.is_empty() {
            summary = format!("{} ({summary})", problems.join(", "));
        }
        let mut outcome = Outcome::new(status, summary)
            .metric(Metric::new("time", ms).unit("ms").thresholds(&self.thresholds).min(0.0))
            .metric(Metric::new("response", (reply.response_ms * 10.0).round() / 10.0).unit("ms").min(0.0))
            .metric(Metric::new("status", f64::from(reply.status)));
        if let Some((_, location)) = reply.headers.iter().find(|(name, _)| name == "location") {
            outcome = outcome.details(format!("location: {location}"));
        }
        Ok(outcome)
    }
}

export_check!(Http);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::host::net::Connection;

    fn reply(status: u16, body: &str, verified: Option<bool>) -> HttpReply {
        HttpReply {
            connection: Connection { address: "127.0.0.1:80".into(), connect_ms: 0.1 },
            status,
            headers: vec![],
            body: body.into(),
            body_truncated: false,
            response_ms: 2.0,
            total_ms: 3.0,
            tls_verified: verified,
        }
    }

    fn rules(contains: Option<&str>) -> Rules<'_> {
        Rules {
            accepted: StatusSet::parse("200-399").unwrap(),
            contains,
            insecure: false,
            thresholds: Thresholds::default(),
        }
    }

    #[test]
    fn status_set_parses_lists_and_ranges() {
        let set = StatusSet::parse("200-299, 301").unwrap();
        assert!(set.accepts(204) && set.accepts(301) && !set.accepts(302) && !set.accepts(500));
        for bad in ["", "abc", "300-200", "99", "200-700"] {
            assert!(StatusSet::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn wrong_status_or_missing_text_is_critical() {
        let ok = rules(Some("\"status\":\"up\"")).evaluate("u", Ok(reply(200, "{\"status\":\"up\"}", None))).unwrap();
        assert_eq!(ok.status, Status::Ok);
        let down = rules(None).evaluate("u", Ok(reply(503, "", None))).unwrap();
        assert_eq!(down.status, Status::Critical);
        assert!(down.summary.starts_with("unexpected status 503"), "{}", down.summary);
        let text = rules(Some("up")).evaluate("u", Ok(reply(200, "down", None))).unwrap();
        assert_eq!(text.status, Status::Critical);
    }

    #[test]
    fn unverified_certificate_is_critical_unless_insecure() {
        let out = rules(None).evaluate("u", Ok(reply(200, "", Some(false)))).unwrap();
        assert_eq!(out.status, Status::Critical);
        let mut lenient = rules(None);
        lenient.insecure = true;
        assert_eq!(lenient.evaluate("u", Ok(reply(200, "", Some(false)))).unwrap().status, Status::Ok);
    }

    #[test]
    fn headers_parse() {
        let headers = parse_headers("Accept: application/json | X-Token: a:b").unwrap();
        assert_eq!(headers[1], ("X-Token".to_string(), "a:b".to_string()));
        assert!(parse_headers("nonsense").is_err());
    }
}
