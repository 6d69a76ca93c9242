//! What the operator allows a check to reach: `system`, `net=HOST:PORT`, `fs=/prefix`.
//!
//! Grants are parsed from the agent config and from `--grant` on the command line, then
//! consulted by the plugin host before any IO. This module is pure (no IO except path
//! canonicalisation in [`GrantSet::fs_allows`]) and its tests read as a table of decisions.
//!
//! Net grants match twice: the name a plugin asks for ([`GrantSet::net_allows_target`]), and
//! the address the agent actually connects to after resolving it
//! ([`GrantSet::net_allows_addr`]). A name is looked up only when a name grant (or `*`)
//! covers it: the lookup itself carries the name to the resolver and on to the name's
//! authoritative servers, so an address grant that admitted any name would let a plugin send
//! whatever it likes to the outside in DNS queries (`<secret>.exfil.example`).
//!
//! A name grant covers the addresses the name resolves to, except the agent's own: loopback,
//! the host's own interface addresses, link-local (cloud metadata at 169.254.169.254),
//! multicast, unspecified and broadcast addresses, in every IPv6 form that embeds an IPv4
//! address (`::ffff:127.0.0.1`, `::127.0.0.1`, `64:ff9b::7f00:1`). A DNS answer could
//! otherwise steer a probe at the agent's own services or a metadata service; only an address
//! grant, or the name `localhost` for loopback, reaches those.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

/// A capability a plugin can ask for and an operator can grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Read-only host facts.
    System,
    /// Network probes.
    Net,
    /// File metadata.
    Fs,
}

impl Capability {
    /// The name used in plugin `needs` lists and grants.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::System => "system",
            Capability::Net => "net",
            Capability::Fs => "fs",
        }
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Capability {
    type Err = GrantError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "system" => Ok(Capability::System),
            "net" => Ok(Capability::Net),
            "fs" => Ok(Capability::Fs),
            other => Err(GrantError(format!("unknown capability `{other}` (known: system, net, fs)"))),
        }
    }
}

/// Why a grant did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GrantError(String);

/// One grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    /// `system`
    System,
    /// `net=HOST:PORT`
    Net(NetPattern),
    /// `fs=/absolute/prefix`
    Fs(PathBuf),
}

impl Grant {
    /// The capability this grant belongs to.
    pub fn capability(&self) -> Capability {
        match self {
            Grant::System => Capability::System,
            Grant::Net(_) => Capability::Net,
            Grant::Fs(_) => Capability::Fs,
        }
    }
}

impl FromStr for Grant {
    type Err = GrantError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        match text.split_once('=') {
            None if text == "system" => Ok(Grant::System),
            None if text == "net" || text == "fs" => Err(GrantError(format!(
                "`{text}` needs a target: `net=HOST:PORT` (e.g. net=db.example.com:5432) or `fs=/path`"
            ))),
            None => Err(GrantError(format!("unknown grant `{text}` (use system, net=HOST:PORT or fs=/path)"))),
            Some(("net", target)) => target.parse().map(Grant::Net),
            Some(("fs", path)) => parse_fs(path).map(Grant::Fs),
            Some(("system", _)) => Err(GrantError("`system` takes no value".into())),
            Some((other, _)) => {
                Err(GrantError(format!("unknown grant `{other}` (use system, net=HOST:PORT or fs=/path)")))
            }
        }
    }
}

impl fmt::Display for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Grant::System => f.write_str("system"),
            Grant::Net(pattern) => write!(f, "net={pattern}"),
            Grant::Fs(path) => write!(f, "fs={}", path.display()),
        }
    }
}

fn parse_fs(text: &str) -> Result<PathBuf, GrantError> {
    let path = Path::new(text);
    if !path.is_absolute() {
        return Err(GrantError(format!("fs grant `{text}` must be an absolute path")));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(GrantError(format!("fs grant `{text}` must not contain `..`")));
    }
    Ok(path.components().collect())
}

/// The host half of a net grant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    /// `*`: any name, any address.
    Any,
    /// `example.com`, or `*.example.com` (any name below example.com). Lower case, no
    /// trailing dot.
    Name { suffix: String, wildcard: bool },
    /// An address with a prefix length: `10.0.0.5` is `10.0.0.5/32`, `10.0.0.0/8`, `[::1]`.
    Network { addr: IpAddr, prefix: u8 },
}

/// The port half of a net grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortPattern {
    /// `*`
    Any,
    /// `8000-8100` (inclusive); a single port is a range of one.
    Range(u16, u16),
}

/// `HOST:PORT` with wildcards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPattern {
    pub host: HostPattern,
    pub port: PortPattern,
}

fn normalise_name(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

fn parse_network(text: &str, whole: &str) -> Result<HostPattern, GrantError> {
    let bad = || GrantError(format!("net grant `{whole}`: `{text}` is not an address or network"));
    let (addr, prefix) = match text.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (text, None),
    };
    let addr: IpAddr = addr.trim_start_matches('[').trim_end_matches(']').parse().map_err(|_| bad())?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(bad)?,
    };
    Ok(HostPattern::Network { addr, prefix })
}

fn parse_port(text: &str, whole: &str) -> Result<PortPattern, GrantError> {
    let bad = || GrantError(format!("net grant `{whole}`: `{text}` is not a port, a range like 8000-8100, or *"));
    if text == "*" {
        return Ok(PortPattern::Any);
    }
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (low.parse().map_err(|_| bad())?, high.parse().map_err(|_| bad())?),
        None => {
            let port = text.parse().map_err(|_| bad())?;
            (port, port)
        }
    };
    if low > high || low == 0 {
        return Err(bad());
    }
    Ok(PortPattern::Range(low, high))
}

impl FromStr for NetPattern {
    type Err = GrantError;

    fn from_str(whole: &str) -> Result<Self, Self::Err> {
        let missing_port =
            || GrantError(format!("net grant `{whole}` needs HOST:PORT (use `*` for any port, e.g. {whole}:*)"));
        let (host, port) = if let Some(rest) = whole.strip_prefix('[') {
            // [v6]:port or [v6]/len:port
            let (inside, after) =
                rest.split_once(']').ok_or_else(|| GrantError(format!("net grant `{whole}`: missing `]`")))?;
            let (prefix, port) = match after.split_once(':') {
                Some((prefix, port)) => (prefix, port),
                None => return Err(missing_port()),
            };
            (format!("{inside}{prefix}"), port)
        } else {
            let (host, port) = whole.rsplit_once(':').ok_or_else(missing_port)?;
            if host.contains(':') {
                return Err(GrantError(format!(
                    "net grant `{whole}`: write IPv6 addresses in brackets, e.g. [::1]:443"
                )));
            }
            (host.to_string(), port)
        };
        let port = parse_port(port, whole)?;
        let host = if host == "*" {
            HostPattern::Any
        } else if host.starts_with(|c: char| c.is_ascii_digit())
            && host.chars().all(|c| c.is_ascii_digit() || c == '.' || c == '/')
            || host.contains(':')
        {
            parse_network(&host, whole)?
        } else {
            let (wildcard, suffix) = match host.strip_prefix("*.") {
                Some(rest) => (true, rest),
                None => (false, host.as_str()),
            };
            let valid = !suffix.is_empty()
                && suffix.split('.').all(|label| {
                    !label.is_empty()
                        && label.len() <= 63
                        && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
                });
            if !valid {
                return Err(GrantError(format!(
                    "net grant `{whole}`: `{host}` is not a host name, `*.name`, an address or a network"
                )));
            }
            HostPattern::Name { suffix: normalise_name(suffix), wildcard }
        };
        Ok(NetPattern { host, port })
    }
}

impl fmt::Display for NetPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.host {
            HostPattern::Any => f.write_str("*")?,
            HostPattern::Name { suffix, wildcard: true } => write!(f, "*.{suffix}")?,
            HostPattern::Name { suffix, wildcard: false } => f.write_str(suffix)?,
            HostPattern::Network { addr: IpAddr::V4(a), prefix: 32 } => write!(f, "{a}")?,
            HostPattern::Network { addr: IpAddr::V6(a), prefix: 128 } => write!(f, "[{a}]")?,
            HostPattern::Network { addr: IpAddr::V4(a), prefix } => write!(f, "{a}/{prefix}")?,
            HostPattern::Network { addr: IpAddr::V6(a), prefix } => write!(f, "[{a}]/{prefix}")?,
        }
        match self.port {
            PortPattern::Any => f.write_str(":*"),
            PortPattern::Range(low, high) if low == high => write!(f, ":{low}"),
            PortPattern::Range(low, high) => write!(f, ":{low}-{high}"),
        }
    }
}

fn in_network(ip: IpAddr, net: IpAddr, prefix: u8) -> bool {
    match (ip, net) {
        (IpAddr::V4(ip), IpAddr::V4(net)) => {
            let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(prefix)) };
            u32::from(ip) & mask == u32::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V6(net)) => {
            let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(prefix)) };
            u128::from(ip) & mask == u128::from(net) & mask
        }
        (IpAddr::V6(ip), IpAddr::V4(_)) => embedded_v4(ip).is_some_and(|v4| in_network(IpAddr::V4(v4), net, prefix)),
        (IpAddr::V4(_), IpAddr::V6(_)) => false,
    }
}

/// The IPv4 address an IPv6 address carries, in the forms that reach it: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d`, deprecated but still routed by some
/// stacks) and the NAT64 well-known prefix (`64:ff9b::/96`, RFC 6052).
fn embedded_v4(v6: std::net::Ipv6Addr) -> Option<std::net::Ipv4Addr> {
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = v6.segments();
    let low = std::net::Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
    // `::` and `::1` are IPv6's own unspecified and loopback, not IPv4-compatible.
    let compatible = s[..6] == [0; 6] && u32::from(low) > 1;
    let nat64 = s[..6] == [0x64, 0xff9b, 0, 0, 0, 0];
    (compatible || nat64).then_some(low)
}

/// The same address in one form: an IPv6 address that embeds an IPv4 one becomes that.
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => embedded_v4(v6).map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Addresses a name grant does not reach on its own (see the module docs). `own` holds the
/// addresses of the agent host's interfaces.
fn is_sensitive(ip: IpAddr, own: &[IpAddr]) -> bool {
    let ip = canonical_ip(ip);
    if own.iter().any(|o| canonical_ip(*o) == ip) {
        return true;
    }
    match ip {
        IpAddr::V4(v4) => {
            v4.is_loopback() || v4.is_link_local() || v4.is_unspecified() || v4.is_multicast() || v4.is_broadcast()
        }
        IpAddr::V6(v6) => v6.is_loopback() || v6.is_unspecified() || v6.is_multicast() || v6.is_unicast_link_local(),
    }
}

impl PortPattern {
    fn matches(self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Range(low, high) => (low..=high).contains(&port),
        }
    }
}

impl HostPattern {
    fn matches_name(&self, name: &str) -> bool {
        match self {
            HostPattern::Any => true,
            HostPattern::Name { suffix, wildcard: false } => name == suffix,
            HostPattern::Name { suffix, wildcard: true } => {
                name.len() > suffix.len() + 1
                    && name.ends_with(suffix.as_str())
                    && name[..name.len() - suffix.len()].ends_with('.')
            }
            HostPattern::Network { .. } => false,
        }
    }
}

/// The grants of one check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantSet {
    grants: Vec<Grant>,
}

impl GrantSet {
    /// A set from a list of grants.
    pub fn new(grants: Vec<Grant>) -> GrantSet {
        GrantSet { grants }
    }

    /// Add one grant.
    pub fn push(&mut self, grant: Grant) {
        if !self.grants.contains(&grant) {
            self.grants.push(grant);
        }
    }

    /// All grants, in the order given.
    pub fn iter(&self) -> impl Iterator<Item = &Grant> {
        self.grants.iter()
    }

    /// Whether `system` is granted.
    pub fn system(&self) -> bool {
        self.grants.contains(&Grant::System)
    }

    /// Whether the capability has at least one grant.
    pub fn has(&self, capability: Capability) -> bool {
        self.grants.iter().any(|g| g.capability() == capability)
    }

    fn net(&self) -> impl Iterator<Item = &NetPattern> {
        self.grants.iter().filter_map(|g| match g {
            Grant::Net(p) => Some(p),
            _ => None,
        })
    }

    /// Whether a probe of `host:port` may start. `host` is a name or an address literal. A
    /// name needs a name grant (or `*`) for that port: only then may the agent look it up.
    /// For a name this is the first of two checks: every resolved address must then pass
    /// [`GrantSet::net_allows_addr`].
    pub fn net_allows_target(&self, host: &str, port: u16) -> bool {
        if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>() {
            return self.net_allows_addr(host, SocketAddr::new(ip, port), &[]);
        }
        self.net_allows_name(host) && {
            let name = normalise_name(host);
            self.net().any(|p| p.port.matches(port) && p.host.matches_name(&name))
        }
    }

    /// Whether the agent may look `name` up at all: some name grant (or `*`) covers it, on any
    /// port. Address and network grants never do.
    pub fn net_allows_name(&self, name: &str) -> bool {
        let name = normalise_name(name);
        self.net().any(|p| p.host.matches_name(&name))
    }

    /// Whether the agent may connect to `addr`, reached by asking for `host` (a name, or the
    /// address itself). `own` holds the addresses of the agent host's interfaces, which a
    /// name grant does not reach.
    pub fn net_allows_addr(&self, host: &str, addr: SocketAddr, own: &[IpAddr]) -> bool {
        let ip = addr.ip();
        let literal = host.trim_start_matches('[').trim_end_matches(']').parse::<IpAddr>().is_ok();
        let name = normalise_name(host);
        self.net().any(|p| {
            if !p.port.matches(addr.port()) {
                return false;
            }
            match &p.host {
                HostPattern::Any => true,
                HostPattern::Network { addr: net, prefix } => in_network(ip, *net, *prefix),
                HostPattern::Name { .. } => {
                    !literal
                        && p.host.matches_name(&name)
                        && (!is_sensitive(ip, own) || (name == "localhost" && canonical_ip(ip).is_loopback()))
                }
            }
        })
    }

    /// Whether `path` lies under a granted prefix, after resolving `..` and symlinks. Returns
    /// the canonical path to use for the IO, so the check and the use see the same file.
    ///
    /// Symlinks are followed here, one component at a time, and never outside the grants: a
    /// link whose target leaves every granted prefix is refused with the same words as a path
    /// that was never granted, before anything outside is looked at. So a link to `/` inside a
    /// granted directory tells the plugin neither whether an outside path exists nor where
    /// the link points.
    /// [`GrantSet::fs_allows`] without the file system: for a path answered from a facts file,
    /// which may name files this host does not have. `..` is resolved by its text.
    pub fn fs_allows_lexically(&self, path: &Path) -> Result<PathBuf, FsDenied> {
        if !path.is_absolute() {
            return Err(FsDenied::Invalid(format!("`{}` is not an absolute path", path.display())));
        }
        let candidate = lexical_normalise(path);
        let covered =
            self.grants.iter().any(|g| matches!(g, Grant::Fs(p) if candidate.starts_with(lexical_normalise(p))));
        if covered { Ok(candidate) } else { Err(FsDenied::Denied(format!("no fs grant covers `{}`", path.display()))) }
    }

    pub fn fs_allows(&self, path: &Path) -> Result<PathBuf, FsDenied> {
        if !path.is_absolute() {
            return Err(FsDenied::Invalid(format!("`{}` is not an absolute path", path.display())));
        }
        let denied = || FsDenied::Denied(format!("no fs grant covers `{}`", path.display()));
        // The operator's prefixes, resolved: the operator chose them, so following their own
        // symlinks reveals nothing to the plugin.
        let roots: Vec<(PathBuf, PathBuf)> = self
            .grants
            .iter()
            .filter_map(|g| match g {
                Grant::Fs(p) => Some(p),
                _ => None,
            })
            .filter_map(|p| canonical(p).map(|c| (p.clone(), c)))
            .collect();
        let mut candidate = lexical_normalise(path);
        // Refuse before touching the file system, so an ungranted path's existence is not revealed.
        if !roots.iter().any(|(granted, real)| candidate.starts_with(granted) || candidate.starts_with(real)) {
            return Err(denied());
        }
        let mut hops = 0;
        'restart: loop {
            // `candidate` is lexically normal; find the canonical root it starts in (a granted
            // path is rewritten onto its canonical form) and walk the rest.
            let Some((root, rest)) = roots.iter().find_map(|(granted, real)| {
                let rest = candidate.strip_prefix(real).or_else(|_| candidate.strip_prefix(granted)).ok()?;
                Some((real.clone(), rest.to_path_buf()))
            }) else {
                return Err(denied());
            };
            let mut resolved = root;
            let mut components = rest.components();
            while let Some(component) = components.next() {
                let next = resolved.join(component);
                let metadata = std::fs::symlink_metadata(&next)
                    .map_err(|e| FsDenied::Failed(format!("`{}`: {}", path.display(), e)))?;
                if !metadata.is_symlink() {
                    resolved = next;
                    continue;
                }
                hops += 1;
                if hops > MAX_SYMLINK_HOPS {
                    return Err(FsDenied::Failed(format!("`{}`: too many levels of symbolic links", path.display())));
                }
                let target =
                    std::fs::read_link(&next).map_err(|e| FsDenied::Failed(format!("`{}`: {}", path.display(), e)))?;
                // `resolved` has no symlinks left in it, so `..` in the target can be taken
                // lexically; the new candidate must again start inside a grant.
                let mut followed = if target.is_absolute() { target } else { resolved.join(target) };
                followed.push(components.as_path());
                candidate = lexical_normalise(&followed);
                continue 'restart;
            }
            return Ok(resolved);
        }
    }
}

/// Symlinks followed in one path at most, as Linux allows (ELOOP past 40).
const MAX_SYMLINK_HOPS: u32 = 40;

fn canonical(prefix: &Path) -> Option<PathBuf> {
    std::fs::canonicalize(prefix).ok()
}

/// `..` and `.` removed without touching the file system (`/a/b/../c` is `/a/c`; `..` at the
/// root stays at the root, as the kernel does).
fn lexical_normalise(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// Why a path was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FsDenied {
    /// No grant covers it.
    Denied(String),
    /// The path is malformed.
    Invalid(String),
    /// It could not be resolved (it does not exist, permission denied).
    Failed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(grants: &[&str]) -> GrantSet {
        GrantSet::new(grants.iter().map(|g| g.parse().unwrap()).collect())
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn grants_parse_and_print_back() {
        for text in [
            "system",
            "net=db.example.com:5432",
            "net=*.example.com:443",
            "net=*:*",
            "net=10.0.0.0/8:8000-8100",
            "net=192.0.2.1:53",
            "net=[::1]:443",
            "net=[2001:db8::]/32:*",
            "fs=/var/backups",
        ] {
            assert_eq!(text.parse::<Grant>().unwrap().to_string(), text);
        }
    }

    #[test]
    fn malformed_grants_are_refused_with_a_reason() {
        let cases = [
            ("net", "needs a target"),
            ("net=db.example.com", "needs HOST:PORT"),
            ("net=db:http", "is not a port"),
            ("net=db:0", "is not a port"),
            ("net=::1:443", "brackets"),
            ("net=10.0.0.0/33:1", "not an address or network"),
            ("net=bad host:1", "not a host name"),
            ("net=*.:1", "not a host name"),
            ("fs=relative/path", "absolute"),
            ("fs=/var/../etc", "must not contain `..`"),
            ("disk=/", "unknown grant"),
            ("system=yes", "takes no value"),
        ];
        for (text, want) in cases {
            let err = text.parse::<Grant>().unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        }
    }

    #[test]
    fn net_decisions() {
        // (grants, host asked for, address connected, allowed?)
        let table: &[(&[&str], &str, &str, bool)] = &[
            (&["net=db.example.com:5432"], "db.example.com", "10.1.2.3:5432", true),
            (&["net=db.example.com:5432"], "DB.Example.COM.", "10.1.2.3:5432", true),
            (&["net=db.example.com:5432"], "db.example.com", "10.1.2.3:5433", false),
            (&["net=db.example.com:5432"], "other.example.com", "10.1.2.3:5432", false),
            (&["net=*.example.com:443"], "a.b.example.com", "192.0.2.7:443", true),
            (&["net=*.example.com:443"], "example.com", "192.0.2.7:443", false),
            (&["net=*.example.com:443"], "evilexample.com", "192.0.2.7:443", false),
            // A DNS answer must not steer a name grant at loopback or metadata addresses.
            (&["net=*.example.com:443"], "a.example.com", "127.0.0.1:443", false),
            (&["net=*.example.com:80"], "meta.example.com", "169.254.169.254:80", false),
            (&["net=*.example.com:443"], "a.example.com", "[::ffff:127.0.0.1]:443", false),
            (&["net=localhost:8080"], "localhost", "127.0.0.1:8080", true),
            (&["net=localhost:8080"], "localhost", "[::1]:8080", true),
            (&["net=127.0.0.1:8080"], "127.0.0.1", "127.0.0.1:8080", true),
            (&["net=127.0.0.1:8080"], "sneaky.example", "127.0.0.1:8080", true),
            (&["net=10.0.0.0/8:*"], "db.internal", "10.9.8.7:1234", true),
            (&["net=10.0.0.0/8:*"], "db.internal", "11.0.0.1:1234", false),
            (&["net=[2001:db8::]/32:443"], "v6.example", "[2001:db8::5]:443", true),
            (&["net=*:*"], "anything", "127.0.0.1:22", true),
            (&["system", "fs=/"], "db.example.com", "10.1.2.3:5432", false),
            (&[], "db.example.com", "10.1.2.3:5432", false),
            // Every IPv6 form of an IPv4 loopback or metadata address is still that address.
            (&["net=*.example.com:443"], "a.example.com", "[::127.0.0.1]:443", false),
            (&["net=*.example.com:443"], "a.example.com", "[64:ff9b::7f00:1]:443", false),
            (&["net=*.example.com:80"], "a.example.com", "[::ffff:169.254.169.254]:80", false),
            (&["net=127.0.0.0/8:443"], "127.0.0.1", "[::127.0.0.1]:443", true),
            (&["net=*.example.com:443"], "a.example.com", "[2001:db8::1]:443", true),
        ];
        for (grants, host, connected, want) in table {
            let got = set(grants).net_allows_addr(host, addr(connected), &[]);
            assert_eq!(got, *want, "grants {grants:?}, asked {host}, connected {connected}");
        }
    }

    #[test]
    fn a_name_grant_does_not_reach_the_hosts_own_addresses() {
        let own: Vec<IpAddr> = vec!["192.0.2.10".parse().unwrap(), "2001:db8::10".parse().unwrap()];
        let by_name = set(&["net=*.example.com:22"]);
        assert!(!by_name.net_allows_addr("me.example.com", addr("192.0.2.10:22"), &own));
        assert!(!by_name.net_allows_addr("me.example.com", addr("[::ffff:192.0.2.10]:22"), &own));
        assert!(!by_name.net_allows_addr("me.example.com", addr("[2001:db8::10]:22"), &own));
        assert!(by_name.net_allows_addr("other.example.com", addr("192.0.2.11:22"), &own));
        // An address grant says exactly what it allows.
        assert!(set(&["net=192.0.2.10:22"]).net_allows_addr("192.0.2.10", addr("192.0.2.10:22"), &own));
    }

    #[test]
    fn targets_are_prechecked_before_resolving() {
        let grants = set(&["net=db.example.com:5432", "net=10.0.0.0/8:22"]);
        assert!(grants.net_allows_target("db.example.com", 5432));
        assert!(!grants.net_allows_target("db.example.com", 80));
        assert!(grants.net_allows_target("10.1.1.1", 22));
        assert!(!grants.net_allows_target("192.0.2.1", 22));
    }

    #[test]
    fn only_a_name_grant_lets_a_name_be_looked_up() {
        // The DNS exfiltration case: address grants only, on the ports asked for.
        let addresses = set(&["net=127.0.0.1:8080", "net=127.0.0.1:53", "net=10.0.0.0/8:*"]);
        assert!(!addresses.net_allows_target("s3cr3t.exfil.example", 8080));
        assert!(!addresses.net_allows_target("s3cr3t.exfil.example", 53));
        assert!(!addresses.net_allows_name("s3cr3t.exfil.example"));
        assert!(!addresses.net_allows_target("jump.internal", 22));
        let names = set(&["net=*.example.com:53", "net=*:8443"]);
        assert!(names.net_allows_target("a.example.com", 53));
        assert!(!names.net_allows_target("a.example.com", 80));
        assert!(names.net_allows_name("a.example.com"));
        // `*` is a name grant too: the operator allowed any name on 8443.
        assert!(names.net_allows_target("anything.example.org", 8443));
    }

    #[test]
    fn fs_prefix_is_checked_after_resolving_dots_and_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("backups");
        let outside = dir.path().join("secret");
        std::fs::create_dir_all(&granted).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(granted.join("db.tar"), b"x").unwrap();
        std::fs::write(outside.join("key"), b"x").unwrap();
        std::os::unix::fs::symlink(outside.join("key"), granted.join("escape")).unwrap();
        let grants = GrantSet::new(vec![Grant::Fs(granted.clone())]);

        assert!(grants.fs_allows(&granted.join("db.tar")).is_ok());
        assert!(matches!(grants.fs_allows(&granted.join("../secret/key")), Err(FsDenied::Denied(_))));
        assert!(matches!(grants.fs_allows(&granted.join("escape")), Err(FsDenied::Denied(_))));
        // A link inside the grant that stays inside is followed, relative or absolute.
        std::fs::create_dir_all(granted.join("2026-12-01")).unwrap();
        std::fs::write(granted.join("2026-12-01/db.tar"), b"x").unwrap();
        std::os::unix::fs::symlink("2026-12-01", granted.join("latest")).unwrap();
        std::os::unix::fs::symlink(granted.join("2026-12-01"), granted.join("latest-abs")).unwrap();
        let want = std::fs::canonicalize(granted.join("2026-12-01/db.tar")).unwrap();
        assert_eq!(grants.fs_allows(&granted.join("latest/db.tar")), Ok(want.clone()));
        assert_eq!(grants.fs_allows(&granted.join("latest-abs/db.tar")), Ok(want));
        assert!(matches!(grants.fs_allows(Path::new("/etc/shadow")), Err(FsDenied::Denied(_))));
        assert!(matches!(grants.fs_allows(Path::new("relative")), Err(FsDenied::Invalid(_))));
        assert!(matches!(grants.fs_allows(&granted.join("missing")), Err(FsDenied::Failed(_))));
        // A sibling whose name starts with the prefix is not under it.
        std::fs::create_dir_all(dir.path().join("backups-old")).unwrap();
        assert!(matches!(grants.fs_allows(&dir.path().join("backups-old")), Err(FsDenied::Denied(_))));
    }

    #[test]
    fn a_link_out_of_the_grant_reveals_nothing_about_outside() {
        let dir = tempfile::tempdir().unwrap();
        let granted = dir.path().join("granted");
        std::fs::create_dir_all(&granted).unwrap();
        std::os::unix::fs::symlink("/", granted.join("root")).unwrap();
        std::os::unix::fs::symlink("../../../../../../../..", granted.join("up")).unwrap();
        std::os::unix::fs::symlink("loop", granted.join("loop")).unwrap();
        let grants = GrantSet::new(vec![Grant::Fs(granted.clone())]);
        // An existing and a missing outside path get the same answer, which names neither the
        // target nor the resolved path.
        let answers: Vec<_> = ["root/etc/passwd", "root/no/such/file", "up/etc", "up/nonexistent", "root"]
            .iter()
            .map(|rel| {
                grants.fs_allows(&granted.join(rel)).map_err(|e| match e {
                    FsDenied::Denied(why) => why.replace(&granted.join(rel).display().to_string(), "PATH"),
                    other => format!("{other:?}"),
                })
            })
            .collect();
        for answer in &answers {
            assert_eq!(answer, &Err("no fs grant covers `PATH`".to_string()));
        }
        assert!(
            matches!(grants.fs_allows(&granted.join("loop")), Err(FsDenied::Failed(why)) if why.contains("too many levels"))
        );
    }
}
