//! The embedded broker for `vakt-collector up`: rumqttd on its own threads, MQTT 3.1.1 on one
//! TCP listener with username/password auth, memory bounded by small commitlog segments.
//!
//! rumqttd has no shutdown (rumqtt #771): the broker lives as long as the process. It keeps
//! nothing on disk either; the agents' spools and acks are what make delivery durable.
//!
//! Client ids are identities in MQTT: a new connection with a client id in use takes it over
//! and the old one is dropped. So the ids that keep Vakt running are reserved here, before
//! the router ever sees a connection:
//! - `vakt-collector…` belongs to the collector's in-process links; no network client gets it
//!   (a client with the agents' password once knocked ingest off the broker for good).
//! - the local agent's client id is accepted only with the local agent's own credentials, so
//!   another agent's password cannot kick it off and fake its death.
//!
//! The router takes at most [`max_connections`] clients, derived from the process's file
//! descriptor limit, so MQTT clients alone cannot exhaust it.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// The prefix of the collector's own client ids.
pub const COLLECTOR_CLIENT_PREFIX: &str = "vakt-collector";
/// In-process links made before the broker starts: one in use, the rest spares.
const LINKS: usize = 4;

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("MQTT listen address {addr} is not available")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("attaching the collector to the embedded broker: {0}")]
    Link(String),
}

/// Who may connect.
#[derive(Debug, Clone)]
pub struct Accounts {
    /// The agents' shared account (`vakt-agent` and the `mqtt-password` file).
    pub agents: (String, String),
    /// The local agent's own account and its client id, which no other account may use.
    pub local: Option<(String, String, String)>,
}

/// Connections refused by the embedded broker's login check, for `/metrics`.
#[derive(Debug, Default)]
pub struct BrokerStats {
    pub refused_logins: AtomicU64,
}

impl Accounts {
    /// The login decision, also used by the tests: may `client_id` log in as `user`?
    pub fn allows(&self, client_id: &str, user: &str, password: &str) -> bool {
        let matches = |(u, p): (&str, &str)| u == user && crate::auth::constant_eq(p, password);
        let agents = matches((&self.agents.0, &self.agents.1));
        let local = self.local.as_ref().is_some_and(|(u, p, _)| matches((u, p)));
        if client_id.starts_with(COLLECTOR_CLIENT_PREFIX) {
            return false;
        }
        match &self.local {
            Some((_, _, id)) if id == client_id => local,
            _ => agents || local,
        }
    }
}

/// The most MQTT clients the router takes: well below the file descriptor limit, which HTTP
/// connections, the database, the spool and the plugin cache share.
pub fn max_connections() -> usize {
    let soft = crate::limits::open_files().0;
    usize::try_from(soft / 2).unwrap_or(usize::MAX).clamp(16, 10_010)
}

/// Start the broker on `listen` for `accounts`; returns the collector's in-process links (the
/// first to use, the others spares for when it fails: rumqttd makes links only before it
/// starts).
pub fn start(
    listen: SocketAddr,
    accounts: Accounts,
    stats: Arc<BrokerStats>,
) -> Result<Vec<(LinkTx, LinkRx)>, BrokerError> {
    // rumqttd binds on its own thread and only logs a failure; find out here instead.
    drop(std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?);
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5000,
        max_payload_size: protocol::codec::MAX_PAYLOAD + 4096,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(move |client_id: String, user: String, password: String| {
        let allowed = accounts.allows(&client_id, &user, &password);
        if !allowed {
            stats.refused_logins.fetch_add(1, Ordering::Relaxed);
        }
        std::future::ready(allowed)
    });
    let server = ServerSettings { name: "agents".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: max_connections(),
            max_outgoing_packet_count: 200,
            // Per topic: at most 4 segments of 1 MiB in memory.
            max_segment_size: 1 << 20,
            max_segment_count: 4,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("agents".to_string(), server)])),
        ..Config::default()
    };
    let mut broker = Broker::new(config);
    let mut links = Vec::with_capacity(LINKS);
    for n in 0..LINKS {
        let id =
            if n == 0 { COLLECTOR_CLIENT_PREFIX.to_string() } else { format!("{COLLECTOR_CLIENT_PREFIX}-spare-{n}") };
        links.push(broker.link(&id).map_err(|e| BrokerError::Link(e.to_string()))?);
    }
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(error = %error, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    Ok(links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reserved_client_ids_need_their_own_account() {
        let accounts = Accounts {
            agents: ("vakt-agent".into(), "shared".into()),
            local: Some(("vakt-local".into(), "local-secret".into(), "vakt-agent-host1".into())),
        };
        // (client id, user, password, allowed?)
        let table = [
            ("vakt-agent-web-01", "vakt-agent", "shared", true),
            ("vakt-agent-web-01", "vakt-agent", "wrong", false),
            ("vakt-collector", "vakt-agent", "shared", false),
            ("vakt-collector-spare-1", "vakt-local", "local-secret", false),
            ("vakt-agent-host1", "vakt-agent", "shared", false),
            ("vakt-agent-host1", "vakt-local", "local-secret", true),
            ("vakt-agent-host1", "vakt-local", "shared", false),
            ("anything", "nobody", "", false),
        ];
        for (client, user, password, want) in table {
            assert_eq!(accounts.allows(client, user, password), want, "{client} as {user}/{password}");
        }
    }
}
