//! `smtp`: an SMTP server's banner and EHLO reply, like `check_smtp`.
//!
//! Config: `host` (required), `port` (default 25), `expect` (text the banner must contain),
//! `starttls` (default `false`; when `true`, a server that does not offer STARTTLS is
//! critical), `timeout` (default `10s`), `warning` and `critical` (Nagios ranges on the time to
//! the end of the EHLO reply, ms). Needs a `net` grant covering `host:port`.

use vakt_plugin_sdk::host::net::{self, SmtpReply};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Status, Thresholds, export_check,
    unreachable, worst,
};

struct Smtp;

impl Check for Smtp {
    const NAME: &'static str = "smtp";
    const DESCRIPTION: &'static str = "Reads an SMTP server's banner, says EHLO and checks the reply.";
    const NEEDS: &'static [Capability] = &[Capability::Net];
    const CONFIG: &'static [Key] = &[
        Key::required("host", "mail server, e.g. mx.example.com"),
        Key::with_default("port", "25", "TCP port (25, 587, ...)"),
        Key::optional("expect", "text the banner must contain"),
        Key::with_default("starttls", "false", "require the server to offer STARTTLS"),
        Key::with_default("timeout", "10s", "give up after this long"),
        Key::optional("warning", "warning range for the time to the EHLO reply, ms (Nagios range)"),
        Key::optional("critical", "critical range for the time to the EHLO reply, ms (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let host = config.text("host")?;
        let port: u16 = config.parse("port")?;
        let timeout_ms = config.duration("timeout")?.as_millis().min(u128::from(u32::MAX)) as u32;
        let rules = Rules {
            expect: config.get("expect"),
            starttls: config.flag("starttls")?,
            thresholds: config.thresholds()?,
        };
        rules.evaluate(host, port, net::smtp_probe(host, port, timeout_ms))
    }
}

struct Rules<'a> {
    expect: Option<&'a str>,
    starttls: bool,
    thresholds: Thresholds,
}

impl Rules<'_> {
    fn evaluate(&self, host: &str, port: u16, reply: Result<SmtpReply, HostError>) -> Result<Outcome, CheckError> {
        let reply = match reply {
            Ok(reply) => reply,
            Err(error) => return unreachable(&format!("{host}:{port}"), error),
        };
        let ms = (reply.total_ms * 10.0).round() / 10.0;
        let mut status = self.thresholds.evaluate(ms);
        let mut problems = Vec::new();
        if reply.banner_code != 220 {
            status = Status::Critical;
            problems.push(format!("banner code {}", reply.banner_code));
        }
        if reply.ehlo_code != 250 {
            status = Status::Critical;
            problems.push(format!("EHLO answered {}", reply.ehlo_code));
        }
        if let Some(text) = self.expect
            && !reply.banner.contains(text)
        {
            status = Status::Critical;
            problems.push(format!("banner does not contain `{text}`"));
        }
        let has_starttls = reply.extensions.iter().any(|e| e.eq_ignore_ascii_case("STARTTLS"));
        if self.starttls && !has_starttls {
            status = worst(status, Status::Critical);
            problems.push("STARTTLS not offered".into());
        }
        let mut summary = format!("{} {} in {ms:.0} ms", reply.banner_code, reply.banner);
        if !problems.is_empty() {
            summary = format!("{}: {summary}", problems.join(", "));
        }
        Ok(Outcome::new(status, summary)
            .details(format!("extensions: {}", reply.extensions.join(", ")))
            .metric(Metric::new("time", ms).unit("ms").thresholds(&self.thresholds).min(0.0)))
    }
}

export_check!(Smtp);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::host::net::Connection;

    fn reply(banner_code: u16, extensions: &[&str]) -> SmtpReply {
        SmtpReply {
            connection: Connection { address: "127.0.0.1:25".into(), connect_ms: 0.1 },
            banner_code,
            banner: "mx.example.com ESMTP Postfix".into(),
            ehlo_code: 250,
            extensions: extensions.iter().map(|s| s.to_string()).collect(),
            total_ms: 4.0,
        }
    }

    fn rules(starttls: bool) -> Rules<'static> {
        Rules { expect: None, starttls, thresholds: Thresholds::default() }
    }

    #[test]
    fn healthy_server_is_ok() {
        let out = rules(true).evaluate("mx", 25, Ok(reply(220, &["PIPELINING", "STARTTLS"]))).unwrap();
        assert_eq!(out.status, Status::Ok);
        assert!(out.summary.starts_with("220 mx.example.com ESMTP Postfix"), "{}", out.summary);
    }

    #[test]
    fn bad_banner_or_missing_starttls_is_critical() {
        assert_eq!(rules(false).evaluate("mx", 25, Ok(reply(554, &[]))).unwrap().status, Status::Critical);
        let out = rules(true).evaluate("mx", 25, Ok(reply(220, &["PIPELINING"]))).unwrap();
        assert_eq!(out.status, Status::Critical);
        assert!(out.summary.starts_with("STARTTLS not offered"), "{}", out.summary);
        let strict = Rules { expect: Some("Exim"), starttls: false, thresholds: Thresholds::default() };
        assert_eq!(strict.evaluate("mx", 25, Ok(reply(220, &[]))).unwrap().status, Status::Critical);
    }
}
