//! `tcp`: can a TCP connection be made to `host:port`, and how fast, like `check_tcp`.
//!
//! Config: `host`, `port` (both required), `timeout` (default `5s`), `warning` and `critical`
//! (Nagios ranges on connect time in ms, optional). A refused or timed-out connection is
//! critical. Needs a `net` grant covering `host:port`.

use vakt_plugin_sdk::host::net::{self, Connection};
use vakt_plugin_sdk::{
    Capability, Check, CheckError, Config, HostError, Key, Metric, Outcome, Thresholds, export_check, unreachable,
};

struct Tcp;

impl Check for Tcp {
    const NAME: &'static str = "tcp";
    const DESCRIPTION: &'static str = "Connects to a TCP port and measures the connect time.";
    const NEEDS: &'static [Capability] = &[Capability::Net];
    const CONFIG: &'static [Key] = &[
        Key::required("host", "host name or address, e.g. db.example.com"),
        Key::required("port", "TCP port, e.g. 5432"),
        Key::with_default("timeout", "5s", "give up after this long"),
        Key::optional("warning", "warning range for connect time, ms (Nagios range)"),
        Key::optional("critical", "critical range for connect time, ms (Nagios range)"),
    ];

    fn run(config: &Config) -> Result<Outcome, CheckError> {
        let host = config.text("host")?;
        let port: u16 = config.parse("port")?;
        let timeout_ms = config.duration("timeout")?.as_millis().min(u128::from(u32::MAX)) as u32;
        let reply = net::tcp_connect(host, port, timeout_ms);
        evaluate(host, port, &config.thresholds()?, reply)
    }
}

fn evaluate(
    host: &str,
    port: u16,
    thresholds: &Thresholds,
    reply: Result<Connection, HostError>,
) -> Result<Outcome, CheckError> {
    // An IPv6 address in brackets, so its port stays readable.
    let target = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    match reply {
        Ok(conn) => {
            let ms = (conn.connect_ms * 100.0).round() / 100.0;
            // The address a name resolved to, once; an address asked for is not repeated.
            let via = if conn.address == target { String::new() } else { format!(" ({})", conn.address) };
            Ok(Outcome::new(thresholds.evaluate(ms), format!("{target} accepted the connection in {ms:.1} ms{via}"))
                .metric(Metric::new("time", ms).unit("ms").thresholds(thresholds).min(0.0)))
        }
        Err(error) => unreachable(&target, error),
    }
}

export_check!(Tcp);

#[cfg(test)]
mod tests {
    use super::*;
    use vakt_plugin_sdk::Status;

    #[test]
    fn refused_and_timeout_are_critical_denied_is_an_error() {
        let t = Thresholds::default();
        let refused = evaluate("db", 5432, &t, Err(HostError::Failed("connection refused".into()))).unwrap();
        assert_eq!(refused.status, Status::Critical);
        assert!(refused.summary.contains("connection refused"));
        assert_eq!(evaluate("db", 1, &t, Err(HostError::Timeout)).unwrap().status, Status::Critical);
        assert!(matches!(evaluate("db", 1, &t, Err(HostError::Denied("no".into()))), Err(CheckError::Denied(_))));
    }

    #[test]
    fn slow_connect_crosses_threshold() {
        let t = Thresholds { warning: Some("100".parse().unwrap()), critical: None };
        let conn = Connection { address: "10.0.0.1:5432".into(), connect_ms: 150.0 };
        let out = evaluate("db", 5432, &t, Ok(conn)).unwrap();
        assert_eq!(out.status, Status::Warning);
        assert_eq!(out.metrics[0].warn, Some(100.0));
        assert_eq!(out.summary, "db:5432 accepted the connection in 150.0 ms (10.0.0.1:5432)");
    }

    #[test]
    fn an_address_asked_for_is_named_once() {
        let t = Thresholds::default();
        let v4 = Connection { address: "127.0.0.1:22".into(), connect_ms: 0.2 };
        assert_eq!(
            evaluate("127.0.0.1", 22, &t, Ok(v4)).unwrap().summary,
            "127.0.0.1:22 accepted the connection in 0.2 ms"
        );
        let v6 = Connection { address: "[::1]:22".into(), connect_ms: 0.2 };
        assert_eq!(evaluate("::1", 22, &t, Ok(v6)).unwrap().summary, "[::1]:22 accepted the connection in 0.2 ms");
    }
}
