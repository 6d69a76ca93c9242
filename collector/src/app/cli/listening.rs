//! The services listening on this host when `up` first starts, read from `/proc/net/tcp` and
//! `/proc/net/tcp6`. The well-known ones become `tcp` checks of the local agent, and through
//! them the first components of the status page: a status page says whether a service works,
//! not how busy a core is.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Ports worth a component on a first start: (port, check name, title on the status page).
const KNOWN: &[(u16, &str, &str)] = &[
    (22, "ssh", "SSH"),
    (25, "smtp", "E-mail (SMTP)"),
    (53, "dns", "DNS"),
    (80, "http", "Website (HTTP)"),
    (110, "pop3", "E-mail (POP3)"),
    (143, "imap", "E-mail (IMAP)"),
    (389, "ldap", "Directory (LDAP)"),
    (443, "https", "Website (HTTPS)"),
    (465, "smtps", "E-mail submission (SMTPS)"),
    (587, "submission", "E-mail submission"),
    (636, "ldaps", "Directory (LDAPS)"),
    (993, "imaps", "E-mail (IMAPS)"),
    (995, "pop3s", "E-mail (POP3S)"),
    (3306, "mysql", "Database (MySQL)"),
    (5432, "postgresql", "Database (PostgreSQL)"),
    (5672, "amqp", "Message queue (AMQP)"),
    (6379, "redis", "Cache (Redis)"),
    (11211, "memcached", "Cache (Memcached)"),
    (27017, "mongodb", "Database (MongoDB)"),
];

/// A service found listening: the check that watches it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub name: &'static str,
    pub title: &'static str,
    /// The address to connect to (loopback for a wildcard listener).
    pub host: IpAddr,
    pub port: u16,
}

impl Service {
    /// The `net` grant its check needs.
    pub fn grant(&self) -> String {
        match self.host {
            IpAddr::V4(a) => format!("net={a}:{}", self.port),
            IpAddr::V6(a) => format!("net=[{a}]:{}", self.port),
        }
    }
}

/// The status page title of a check the local agent runs, if it watches a known service.
pub fn title(check: &str) -> Option<&'static str> {
    KNOWN.iter().find(|(_, name, _)| *name == check).map(|(_, _, title)| *title)
}

/// Sockets in the LISTEN state (`0A`) of a `/proc/net/tcp` (or `tcp6`) table; malformed lines
/// are skipped.
pub fn parse(table: &str) -> Vec<(IpAddr, u16)> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let mut fields = line.split_whitespace();
            let local = fields.nth(1)?;
            let state = fields.nth(1)?;
            if state != "0A" {
                return None;
            }
            let (addr, port) = local.split_once(':')?;
            Some((address(addr)?, u16::from_str_radix(port, 16).ok()?))
        })
        .collect()
}

/// The kernel writes addresses as 32-bit words in host (little-endian) byte order.
fn address(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| hex.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok()).map(u32::swap_bytes))
        .collect();
    match (hex.len(), words?.as_slice()) {
        (8, [a]) => Some(IpAddr::V4(Ipv4Addr::from(*a))),
        (32, [a, b, c, d]) => {
            let mut octets = [0u8; 16];
            for (i, w) in [a, b, c, d].into_iter().enumerate() {
                octets[i * 4..i * 4 + 4].copy_from_slice(&w.to_be_bytes());
            }
            Some(IpAddr::V6(Ipv6Addr::from(octets)))
        }
        _ => None,
    }
}

/// The known services among `listening`, one per port, not on `skip` (the collector's own
/// ports), each reached the way a local client would: through loopback when it listens on
/// every address.
pub fn services(listening: &[(IpAddr, u16)], skip: &[u16]) -> Vec<Service> {
    let mut out: Vec<Service> = Vec::new();
    for &(port, name, title) in KNOWN {
        if skip.contains(&port) {
            continue;
        }
        let addresses: Vec<IpAddr> = listening.iter().filter(|(_, p)| *p == port).map(|(a, _)| *a).collect();
        // IPv4 first, loopback or wildcard first: what `localhost` reaches.
        let best = addresses.iter().min_by_key(|a| match a {
            IpAddr::V4(v4) if v4.is_unspecified() || v4.is_loopback() => 0,
            IpAddr::V6(v6) if v6.is_unspecified() || v6.is_loopback() => 1,
            IpAddr::V4(_) => 2,
            IpAddr::V6(_) => 3,
        });
        let Some(best) = best else { continue };
        let host = match best {
            IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
            other => *other,
        };
        out.push(Service { name, title, host, port });
    }
    out
}

/// The known services listening on this host now (none where `/proc/net` cannot be read).
pub fn on_this_host(skip: &[u16]) -> Vec<Service> {
    let mut listening = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        if let Ok(text) = std::fs::read_to_string(table) {
            listening.extend(parse(&text));
        }
    }
    services(&listening, skip)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Lines as the kernel writes them (trimmed to the fields read).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: 3500007F:0035 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 2 1 0 100 0 0 10 0
   2: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0 100 0 0 10 0
   3: 0100007F:0016 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 4 1 0 100 0 0 10 0
   4: 0F02000A:1538 00000000:0000 0A 00000000:00000000 00:00000000 00000000   106        0 5 1 0 100 0 0 10 0
   5: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st
   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 00000000:00000000
   1: 00000000000000000000000001000000:18EB 00000000000000000000000000000000:0000 0A 00000000:00000000
";

    #[test]
    fn listening_sockets_are_read_from_the_kernels_tables() {
        let v4 = parse(TCP);
        assert_eq!(
            v4,
            [
                ("0.0.0.0".parse().unwrap(), 22),
                ("127.0.0.53".parse().unwrap(), 53),
                ("127.0.0.1".parse().unwrap(), 8080),
                ("10.0.2.15".parse().unwrap(), 5432),
            ],
            "established connections and garbage are skipped"
        );
        assert_eq!(parse(TCP6), [("::".parse().unwrap(), 22), ("::1".parse().unwrap(), 6379)]);
    }

    #[test]
    fn known_services_become_checks_reached_like_a_local_client_would() {
        let mut listening = parse(TCP);
        listening.extend(parse(TCP6));
        let found = services(&listening, &[8080]);
        let summary: Vec<(&str, String, String)> =
            found.iter().map(|s| (s.name, s.host.to_string(), s.grant())).collect();
        assert_eq!(
            summary,
            [
                ("ssh", "127.0.0.1".into(), "net=127.0.0.1:22".into()),
                ("dns", "127.0.0.53".into(), "net=127.0.0.53:53".into()),
                ("postgresql", "10.0.2.15".into(), "net=10.0.2.15:5432".into()),
                ("redis", "::1".into(), "net=[::1]:6379".into()),
            ]
        );
        assert!(services(&listening, &[22, 53, 5432, 6379]).is_empty(), "the collector's own ports are skipped");
        assert_eq!(title("postgresql"), Some("Database (PostgreSQL)"));
        assert_eq!(title("cpu"), None);
    }
}
