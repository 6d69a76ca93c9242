//! DNS lookups with hickory: the host's resolver (/etc/resolv.conf and /etc/hosts) by default,
//! or a server named per lookup. Answers are not cached, so a DNS check measures the server,
//! not the agent's memory.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::TokioResolver;
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::net::NetError;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::RecordType;

use super::{ProbeError, Prober, within};

/// Record types a plugin can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    Cname,
    Mx,
    Ns,
    Txt,
    Srv,
    Soa,
    Ptr,
    Caa,
}

impl RecordKind {
    fn record_type(self) -> RecordType {
        match self {
            RecordKind::A => RecordType::A,
            RecordKind::Aaaa => RecordType::AAAA,
            RecordKind::Cname => RecordType::CNAME,
            RecordKind::Mx => RecordType::MX,
            RecordKind::Ns => RecordType::NS,
            RecordKind::Txt => RecordType::TXT,
            RecordKind::Srv => RecordType::SRV,
            RecordKind::Soa => RecordType::SOA,
            RecordKind::Ptr => RecordType::PTR,
            RecordKind::Caa => RecordType::CAA,
        }
    }
}

fn options(timeout: Option<Duration>) -> ResolverOpts {
    let mut options = ResolverOpts::default();
    options.cache_size = 0;
    if let Some(timeout) = timeout {
        options.timeout = timeout;
        options.attempts = 1;
    }
    options
}

/// A resolver for the given servers, or for the host's configuration when there are none.
pub(crate) fn build_resolver(servers: &[SocketAddr], timeout: Option<Duration>) -> Result<TokioResolver, String> {
    if servers.is_empty() {
        let mut builder =
            TokioResolver::builder_tokio().map_err(|e| format!("reading the resolver configuration: {e}"))?;
        builder.options_mut().cache_size = 0;
        return builder.build().map_err(|e| format!("building the resolver: {e}"));
    }
    let name_servers = servers
        .iter()
        .map(|addr| {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let mut server = NameServerConfig::udp_and_tcp(addr.ip());
            server.connections = vec![udp, tcp];
            server
        })
        .collect();
    TokioResolver::builder_with_config(ResolverConfig::from_name_servers(name_servers), TokioRuntimeProvider::default())
        .with_options(options(timeout))
        .build()
        .map_err(|e| format!("building the resolver: {e}"))
}

/// An error as an operator reads it.
pub(crate) fn describe(error: &NetError) -> String {
    if error.is_nx_domain() { "NXDOMAIN (the name does not exist)".into() } else { error.to_string() }
}

impl Prober {
    /// Look up `name`. `server` replaces the configured resolvers for this lookup.
    pub async fn dns_resolve(
        &self,
        name: &str,
        kind: RecordKind,
        server: Option<SocketAddr>,
        limit: Duration,
    ) -> Result<Vec<String>, ProbeError> {
        if name.is_empty() || name.len() > 253 {
            return Err(ProbeError::Invalid(format!("`{name}` is not a DNS name")));
        }
        let custom;
        let resolver = match server {
            Some(server) => {
                custom = build_resolver(&[server], Some(limit)).map_err(ProbeError::Failed)?;
                &custom
            }
            None => self.resolver()?,
        };
        let wanted = kind.record_type();
        within(limit, async {
            match resolver.lookup(name, wanted).await {
                Ok(lookup) => Ok(lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() == wanted)
                    .map(|r| r.data.to_string())
                    .collect()),
                Err(e) if e.is_nx_domain() => Err(ProbeError::Failed(format!("{name}: {}", describe(&e)))),
                Err(e) if e.is_no_records_found() => Ok(Vec::new()),
                Err(NetError::Timeout) => Err(ProbeError::Timeout),
                Err(e) => Err(ProbeError::Failed(format!("{name}: {}", describe(&e)))),
            }
        })
        .await
    }
}
