//! `tls-cert`: days until a server's TLS certificate expires, like `check_http -C 30,14`.
//!
//! Config: `host` (required), `port` (default 443), `warning` and `critical` (days left, defaults
//! 30 and 14: alert when fewer remain), `allow-invalid` (default `false`: a chain that does not
//! verify for the host name is critical), `timeout` (default `10s`). Needs a `net` grant
//! covering `host:port`.

use std::time::{SystemTime, UNIX_EPOCH};

use vakt_plugin_sdk::host::net::{self, Certificate};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Status, Threshold, Thresholds,
    export_check, unreachable, worst,
};

struct TlsCert;

impl Check for TlsCert {
    const NAME: &'static str = "tls-cert";
    const DESCRIPTION: &'static str = "Days until a server's TLS certificate expires, and whether it verifies.";
    const NEEDS: &'static [Capability] = &[Capability::Net];
    const CONFIG: &'static [Key] = &[
        Key::required("host", "server name (also sent as SNI), e.g. example.com"),
        Key::with_default("port", "443", "TCP port"),
        Key::with_default("warning", "30", "warn when fewer days than this remain"),
        Key::with_default("critical", "14", "critical when fewer days than this remain"),
        Key::with_default("allow-invalid", "false", "do not alert on a chain that does not verify"),
        Key::with_default("timeout", "10s", "give up after this long"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let host = config.text("host")?;
        let port: u16 = config.parse("port")?;
        let thresholds = Thresholds {
            warning: Some(Threshold::below(config.parse("warning")?)),
            critical: Some(Threshold::below(config.parse("critical")?)),
        };
        let timeout_ms = config.duration("timeout")?.as_millis().min(u128::from(u32::MAX)) as u32;
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        let reply = net::tls_certificate(host, port, timeout_ms);
        evaluate(host, port, &thresholds, config.flag("allow-invalid")?, now, reply)
    }
}

fn evaluate(
    host: &str,
    port: u16,
    thresholds: &Thresholds,
    allow_invalid: bool,
    now: i64,
    reply: Result<Certificate, HostError>,
) -> Result<Outcome, CheckError> {
    let cert = match reply {
        Ok(cert) => cert,
        Err(error) => return unreachable(&format!("{host}:{port}"), error),
    };
    let days = (cert.not_after - now) as f64 / 86_400.0;
    let days = (days * 10.0).round() / 10.0;
    let mut status = thresholds.evaluate(days);
    let mut summary = if days < 0.0 {
        status = Status::Critical;
        format!("certificate for {host} expired {:.0} days ago", -days)
    } else {
        format!("certificate for {host} expires in {days:.0} days")
    };
    if !cert.chain_valid && !allow_invalid {
        status = worst(status, Status::Critical);
        let why = cert.chain_error.clone().unwrap_or_else(|| "unknown reason".into());
        summary = format!("{summary}; chain does not verify: {why}");
    }
    Ok(Outcome::new(status, summary)
        .details(format!(
            "subject: {}\nissuer: {}\nnames: {}\nserial: {}\n{} via {}",
            cert.subject,
            cert.issuer,
            cert.sans.join(", "),
            cert.serial,
            cert.tls_version,
            cert.connection.address
        ))
        .metric(Metric::new("days_left", days).thresholds(thresholds))
        .metric(Metric::new("handshake", (cert.handshake_ms * 10.0).round() / 10.0).unit("ms").min(0.0)))
}

export_check!(TlsCert);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::host::net::Connection;

    const DAY: i64 = 86_400;

    fn cert(not_after: i64, valid: bool) -> Certificate {
        Certificate {
            connection: Connection { address: "127.0.0.1:443".into(), connect_ms: 0.2 },
            subject: "CN=example.com".into(),
            issuer: "CN=Test CA".into(),
            sans: vec!["example.com".into()],
            not_before: 0,
            not_after,
            serial: "01".into(),
            chain_valid: valid,
            chain_error: if valid { None } else { Some("UnknownIssuer".into()) },
            tls_version: "TLSv1.3".into(),
            handshake_ms: 1.0,
        }
    }

    fn t() -> Thresholds {
        Thresholds { warning: Some(Threshold::below(30.0)), critical: Some(Threshold::below(14.0)) }
    }

    #[test]
    fn days_left_against_thresholds() {
        let now = 1_000 * DAY;
        assert_eq!(evaluate("h", 443, &t(), false, now, Ok(cert(now + 90 * DAY, true))).unwrap().status, Status::Ok);
        assert_eq!(
            evaluate("h", 443, &t(), false, now, Ok(cert(now + 20 * DAY, true))).unwrap().status,
            Status::Warning
        );
        let soon = evaluate("h", 443, &t(), false, now, Ok(cert(now + 3 * DAY, true))).unwrap();
        assert_eq!(soon.status, Status::Critical);
        assert_eq!(soon.metrics[0].value, 3.0);
        assert_eq!((soon.metrics[0].warn, soon.metrics[0].crit), (Some(30.0), Some(14.0)));
    }

    #[test]
    fn expired_or_unverified_is_critical() {
        let now = 1_000 * DAY;
        let expired = evaluate("h", 443, &t(), false, now, Ok(cert(now - 2 * DAY, true))).unwrap();
        assert_eq!(expired.status, Status::Critical);
        assert!(expired.summary.contains("expired 2 days ago"), "{}", expired.summary);
        let invalid = evaluate("h", 443, &t(), false, now, Ok(cert(now + 90 * DAY, false))).unwrap();
        assert_eq!(invalid.status, Status::Critical);
        assert!(invalid.summary.contains("UnknownIssuer"));
        let allowed = evaluate("h", 443, &t(), true, now, Ok(cert(now + 90 * DAY, false))).unwrap();
        assert_eq!(allowed.status, Status::Ok);
    }
}
