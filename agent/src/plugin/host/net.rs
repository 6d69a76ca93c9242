//! `net` interface: probes, after the grant check on the target, with every resolved address
//! checked again before connecting. With a facts file (`plugin::tape`) the answer comes from
//! the file, after the same grant check on the target.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use crate::plugin::bindings::HostError;
use crate::plugin::bindings::net::{Certificate, Connection, Host, HttpProbe, HttpReply, RecordKind, SmtpReply};
use crate::plugin::capability::Access;
use crate::plugin::state::PluginState;
use crate::plugin::tape::{self, Asked, DnsAsk, FactsFile, HttpAsk, Target};
use crate::probe::{self, AddressPolicy, Prober, millis};

type Answer<T> = wasmtime::Result<Result<T, HostError>>;

/// The grants of one run, as the prober consults them: which names it may look up and which
/// addresses it may connect to.
struct GrantPolicy {
    access: Access,
    /// The agent host's interface addresses, read when the probe starts.
    own: Vec<IpAddr>,
}

impl AddressPolicy for GrantPolicy {
    fn may_resolve(&self, name: &str) -> bool {
        self.access.net_name(name)
    }

    fn allows(&self, host: &str, addr: SocketAddr) -> bool {
        self.access.net_addr(host, addr, &self.own)
    }
}

fn connection(address: SocketAddr, connect: Duration) -> Connection {
    Connection { address: address.to_string(), connect_ms: millis(connect) }
}

impl PluginState {
    /// The target check, then the time the probe may take; `Err` is the plugin's answer.
    fn admit(&self, host: &str, port: u16, timeout_ms: u32) -> Result<Duration, HostError> {
        self.access.net_target(host, port).map_err(HostError::Denied)?;
        let limit = self.probe_limit(timeout_ms);
        if limit.is_zero() {
            return Err(HostError::Timeout);
        }
        Ok(limit)
    }

    fn policy(&self) -> GrantPolicy {
        GrantPolicy { access: self.access.clone(), own: self.services.facts.own_addresses() }
    }

    /// The facts file's answer to `asked` in `list`, when replaying one.
    fn replayed<Q: PartialEq, A: Clone>(
        &self,
        list: impl FnOnce(&FactsFile) -> &Vec<Asked<Q, A>>,
        asked: &Q,
        what: &str,
    ) -> Option<Result<A, HostError>> {
        self.services.tape.as_ref()?.replay(|f| tape::find(list(f), asked), what)
    }

    /// Keep the host's answer to `asked` in `list`, when recording.
    fn recorded<Q: PartialEq, A: Clone>(
        &self,
        list: impl FnOnce(&mut FactsFile) -> &mut Vec<Asked<Q, A>>,
        asked: Q,
        answer: &Result<A, HostError>,
    ) {
        if let Some(tape) = &self.services.tape {
            tape.record(|f| tape::keep(list(f), asked, answer.clone()));
        }
    }
}

impl Host for PluginState {
    async fn tcp_connect(&mut self, host: String, port: u16, timeout_ms: u32) -> Answer<Connection> {
        let limit = match self.admit(&host, port, timeout_ms) {
            Ok(limit) => limit,
            Err(answer) => return Ok(Err(answer)),
        };
        let asked = Target { host: host.clone(), port };
        if let Some(answer) = self.replayed(|f| &f.tcp, &asked, &format!("tcp-connect {host}:{port}")) {
            return Ok(answer);
        }
        let policy = self.policy();
        let result = self.services.prober.tcp_connect(&host, port, limit, &policy).await;
        let answer = result.map(|(addr, connect)| connection(addr, connect)).map_err(Into::into);
        self.recorded(|f| &mut f.tcp, asked, &answer);
        Ok(answer)
    }

    async fn http_request(&mut self, request: HttpProbe) -> Answer<HttpReply> {
        let (host, port) = match Prober::http_target(&request.url) {
            Ok(target) => target,
            Err(error) => return Ok(Err(error.into())),
        };
        let limit = match self.admit(&host, port, request.timeout_ms) {
            Ok(limit) => limit,
            Err(answer) => return Ok(Err(answer)),
        };
        let asked = HttpAsk { method: request.method.clone(), url: request.url.clone() };
        let what = format!("http-request {} {}", request.method, request.url);
        if let Some(answer) = self.replayed(|f| &f.http, &asked, &what) {
            return Ok(answer);
        }
        let policy = self.policy();
        let probe = probe::HttpRequest {
            method: request.method,
            url: request.url,
            headers: request.headers,
            body: request.body,
            want_headers: request.want_headers,
            body_limit: usize::try_from(request.body_limit).unwrap_or(usize::MAX),
            insecure: request.insecure,
        };
        let result = self.services.prober.http_request(&probe, limit, &policy).await;
        let answer = result
            .map(|reply| HttpReply {
                connection: connection(reply.address, reply.connect),
                status: reply.status,
                headers: reply.headers,
                body: reply.body,
                body_truncated: reply.body_truncated,
                response_ms: millis(reply.response),
                total_ms: millis(reply.total),
                tls_verified: reply.tls_verified,
            })
            .map_err(Into::into);
        self.recorded(|f| &mut f.http, asked, &answer);
        Ok(answer)
    }

    async fn dns_resolve(
        &mut self,
        name: String,
        kind: RecordKind,
        server: Option<String>,
        timeout_ms: u32,
    ) -> Answer<Vec<String>> {
        let limit = match self.admit(&name, 53, timeout_ms) {
            Ok(limit) => limit,
            Err(answer) => return Ok(Err(answer)),
        };
        let asked = DnsAsk { name: name.clone(), kind, server: server.clone() };
        let server = match server.as_deref().map(parse_server) {
            None => None,
            Some(Err(answer)) => return Ok(Err(answer)),
            Some(Ok(addr)) => {
                if !self.policy().allows(&addr.ip().to_string(), addr) {
                    return Ok(Err(HostError::Denied(format!(
                        "no net grant covers the DNS server {addr} (grant it with --grant net={addr})"
                    ))));
                }
                Some(addr)
            }
        };
        if let Some(answer) = self.replayed(|f| &f.dns, &asked, &format!("dns-resolve {name} ({kind:?})")) {
            return Ok(answer);
        }
        let kind = match kind {
            RecordKind::A => probe::RecordKind::A,
            RecordKind::Aaaa => probe::RecordKind::Aaaa,
            RecordKind::Cname => probe::RecordKind::Cname,
            RecordKind::Mx => probe::RecordKind::Mx,
            RecordKind::Ns => probe::RecordKind::Ns,
            RecordKind::Txt => probe::RecordKind::Txt,
            RecordKind::Srv => probe::RecordKind::Srv,
            RecordKind::Soa => probe::RecordKind::Soa,
            RecordKind::Ptr => probe::RecordKind::Ptr,
            RecordKind::Caa => probe::RecordKind::Caa,
        };
        let answer = self.services.prober.dns_resolve(&name, kind, server, limit).await.map_err(Into::into);
        self.recorded(|f| &mut f.dns, asked, &answer);
        Ok(answer)
    }

    async fn tls_certificate(&mut self, host: String, port: u16, timeout_ms: u32) -> Answer<Certificate> {
        let limit = match self.admit(&host, port, timeout_ms) {
            Ok(limit) => limit,
            Err(answer) => return Ok(Err(answer)),
        };
        let asked = Target { host: host.clone(), port };
        if let Some(answer) = self.replayed(|f| &f.tls, &asked, &format!("tls-certificate {host}:{port}")) {
            return Ok(answer);
        }
        let policy = self.policy();
        let result = self.services.prober.tls_certificate(&host, port, limit, &policy).await;
        let answer = result
            .map(|cert| Certificate {
                connection: connection(cert.address, cert.connect),
                subject: cert.subject,
                issuer: cert.issuer,
                sans: cert.sans,
                not_before: cert.not_before,
                not_after: cert.not_after,
                serial: cert.serial,
                chain_valid: cert.chain_error.is_none(),
                chain_error: cert.chain_error,
                tls_version: cert.tls_version,
                handshake_ms: millis(cert.handshake),
            })
            .map_err(Into::into);
        self.recorded(|f| &mut f.tls, asked, &answer);
        Ok(answer)
    }

    async fn smtp_probe(&mut self, host: String, port: u16, timeout_ms: u32) -> Answer<SmtpReply> {
        let limit = match self.admit(&host, port, timeout_ms) {
            Ok(limit) => limit,
            Err(answer) => return Ok(Err(answer)),
        };
        let asked = Target { host: host.clone(), port };
        if let Some(answer) = self.replayed(|f| &f.smtp, &asked, &format!("smtp-probe {host}:{port}")) {
            return Ok(answer);
        }
        let policy = self.policy();
        let ehlo = self.services.ehlo_name.clone();
        let result = self.services.prober.smtp_probe(&host, port, &ehlo, limit, &policy).await;
        let answer = result
            .map(|reply| SmtpReply {
                connection: connection(reply.address, reply.connect),
                banner_code: reply.banner_code,
                banner: reply.banner,
                ehlo_code: reply.ehlo_code,
                extensions: reply.extensions,
                total_ms: millis(reply.total),
            })
            .map_err(Into::into);
        self.recorded(|f| &mut f.smtp, asked, &answer);
        Ok(answer)
    }
}

/// `IP:PORT`, `[v6]:PORT` or a bare address (port 53).
fn parse_server(text: &str) -> Result<SocketAddr, HostError> {
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    text.trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| HostError::Invalid(format!("DNS server `{text}` is not IP or IP:PORT")))
}
