//! Network probes on tokio: TCP connect, HTTP(S), DNS, TLS certificate, SMTP.
//!
//! Probes know nothing about plugins. The caller passes an [`AddressPolicy`]; every probe
//! resolves names itself and connects only to addresses the policy allows, so a check made
//! on a name and the connection that follows see the same address (no second lookup, no
//! DNS rebinding between the two).

mod dns;
mod http;
mod smtp;
mod tcp;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hickory_resolver::TokioResolver;
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;
use tokio::time::Instant;

pub use dns::RecordKind;
pub use http::{HttpReply, HttpRequest};
pub use smtp::SmtpReply;
pub use tls::CertificateFacts;

/// Why a probe did not produce an answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProbeError {
    /// The target is not covered by the policy.
    #[error("denied: {0}")]
    Denied(String),
    /// An argument was malformed.
    #[error("invalid: {0}")]
    Invalid(String),
    /// It did not finish in time.
    #[error("timed out")]
    Timeout,
    /// It ran and failed.
    #[error("{0}")]
    Failed(String),
}

/// Decides whether a name may be looked up, and whether a connection to `addr`, reached by
/// asking for `host`, may be made.
pub trait AddressPolicy: Send + Sync {
    /// `true` to allow looking `name` up (the query itself carries the name out).
    fn may_resolve(&self, name: &str) -> bool;
    /// `true` to allow the connection.
    fn allows(&self, host: &str, addr: SocketAddr) -> bool;
}

/// Settings for all probes of one agent.
#[derive(Debug, Clone, Default)]
pub struct ProbeSettings {
    /// DNS servers to use instead of /etc/resolv.conf (`IP:PORT`).
    pub nameservers: Vec<SocketAddr>,
    /// Extra trusted CA certificates (DER), e.g. a company's internal CA.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

/// Shared probing state: the resolver and the TLS trust store, both built on first use.
#[derive(Debug)]
pub struct Prober {
    settings: ProbeSettings,
    resolver: OnceLock<Result<TokioResolver, String>>,
    roots: OnceLock<Arc<rustls::RootCertStore>>,
}

/// A TCP connection a probe made.
#[derive(Debug)]
pub(crate) struct Connected {
    pub(crate) stream: TcpStream,
    pub(crate) addr: SocketAddr,
    pub(crate) connect: Duration,
}

/// Milliseconds as the WIT interface reports them.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl Prober {
    /// A prober with these settings.
    pub fn new(settings: ProbeSettings) -> Prober {
        Prober { settings, resolver: OnceLock::new(), roots: OnceLock::new() }
    }

    fn resolver(&self) -> Result<&TokioResolver, ProbeError> {
        self.resolver
            .get_or_init(|| dns::build_resolver(&self.settings.nameservers, None))
            .as_ref()
            .map_err(|e| ProbeError::Failed(e.clone()))
    }

    /// The host's trust store (/etc/ssl/certs), plus configured extra roots; Mozilla's roots
    /// when the host has none.
    pub(crate) fn roots(&self) -> Arc<rustls::RootCertStore> {
        self.roots
            .get_or_init(|| {
                let mut store = rustls::RootCertStore::empty();
                let native = rustls_native_certs::load_native_certs();
                for cert in native.certs {
                    let _ = store.add(cert);
                }
                if store.is_empty() {
                    store.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
                }
                for cert in &self.settings.extra_roots {
                    if let Err(error) = store.add(cert.clone()) {
                        tracing::warn!(error = %error, "ignoring an extra CA certificate that rustls refused");
                    }
                }
                Arc::new(store)
            })
            .clone()
    }

    /// Resolve `host` to socket addresses (an address literal resolves to itself). A name is
    /// looked up only if the policy allows it.
    async fn resolve(&self, host: &str, port: u16, policy: &dyn AddressPolicy) -> Result<Vec<SocketAddr>, ProbeError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() {
            return Err(ProbeError::Invalid("the host is empty".into()));
        }
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        if !policy.may_resolve(bare) {
            return Err(ProbeError::Denied(format!("no name grant covers {bare}, so it is not looked up")));
        }
        let lookup = self
            .resolver()?
            .lookup_ip(bare)
            .await
            .map_err(|e| ProbeError::Failed(format!("resolving {bare}: {}", dns::describe(&e))))?;
        let addrs: Vec<SocketAddr> = lookup.iter().map(|ip| SocketAddr::new(ip, port)).collect();
        if addrs.is_empty() {
            return Err(ProbeError::Failed(format!("resolving {bare}: no addresses")));
        }
        Ok(addrs)
    }

    /// Resolve, keep the addresses the policy allows, and connect to the first that answers.
    pub(crate) async fn connect(
        &self,
        host: &str,
        port: u16,
        policy: &dyn AddressPolicy,
    ) -> Result<Connected, ProbeError> {
        let resolved = self.resolve(host, port, policy).await?;
        let allowed: Vec<SocketAddr> = resolved.iter().copied().filter(|a| policy.allows(host, *a)).collect();
        if allowed.is_empty() {
            let list: Vec<String> = resolved.iter().map(ToString::to_string).collect();
            return Err(ProbeError::Denied(format!(
                "{host} resolved to {}, which no net grant covers (a name grant does not reach this \
                 host's own, loopback or link-local addresses: grant the address itself)",
                list.join(", ")
            )));
        }
        let mut failed = Vec::new();
        for addr in allowed {
            let started = Instant::now();
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(Connected { stream, addr, connect: started.elapsed() });
                }
                Err(error) => failed.push((addr, describe_io(&error))),
            }
        }
        Err(ProbeError::Failed(connect_failure(host, &failed)))
    }
}

/// Why no address answered, said once: the plugin names its target, so an address literal
/// is not repeated, and a name's addresses follow the reason (`connection refused (10.0.0.5:5432)`).
fn connect_failure(host: &str, failed: &[(SocketAddr, String)]) -> String {
    let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>().is_ok();
    let Some((_, first)) = failed.first() else { return "no address to connect to".into() };
    if failed.iter().all(|(_, why)| why == first) {
        if literal {
            return first.clone();
        }
        let addrs: Vec<String> = failed.iter().map(|(a, _)| a.to_string()).collect();
        return format!("{first} ({})", addrs.join(", "));
    }
    failed.iter().map(|(a, why)| format!("{a}: {why}")).collect::<Vec<_>>().join("; ")
}

/// IO errors as an operator reads them: `connection refused`, not `Connection refused (os error 111)`.
pub(crate) fn describe_io(error: &std::io::Error) -> String {
    use std::io::ErrorKind::*;
    match error.kind() {
        ConnectionRefused => "connection refused".into(),
        ConnectionReset => "connection reset".into(),
        ConnectionAborted => "connection aborted".into(),
        HostUnreachable => "host unreachable".into(),
        NetworkUnreachable => "network unreachable".into(),
        TimedOut => "timed out".into(),
        UnexpectedEof => "connection closed early".into(),
        _ => error.to_string(),
    }
}

/// Run `probe` with a time limit; running out is [`ProbeError::Timeout`].
pub(crate) async fn within<T>(
    limit: Duration,
    probe: impl Future<Output = Result<T, ProbeError>>,
) -> Result<T, ProbeError> {
    tokio::time::timeout(limit, probe).await.unwrap_or(Err(ProbeError::Timeout))
}

#[cfg(test)]
mod tests {
    use super::connect_failure;

    #[test]
    fn a_connect_failure_names_each_address_once() {
        let refused = |a: &str| (a.parse().unwrap(), "connection refused".to_string());
        assert_eq!(connect_failure("127.0.0.1", &[refused("127.0.0.1:1")]), "connection refused");
        assert_eq!(connect_failure("[::1]", &[refused("[::1]:1")]), "connection refused");
        assert_eq!(
            connect_failure("db.example", &[refused("10.0.0.5:5432"), refused("[fd00::5]:5432")]),
            "connection refused (10.0.0.5:5432, [fd00::5]:5432)"
        );
        let mixed = [refused("10.0.0.5:5432"), ("10.0.0.6:5432".parse().unwrap(), "timed out".to_string())];
        assert_eq!(
            connect_failure("db.example", &mixed),
            "10.0.0.5:5432: connection refused; 10.0.0.6:5432: timed out"
        );
        assert_eq!(connect_failure("db.example", &[]), "no address to connect to");
    }
}
