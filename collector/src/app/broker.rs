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
//! Clients do not reach rumqttd directly: [`front`] accepts them on the public address and
//! relays each to rumqttd on a loopback port of its own. rumqttd's accept loop retries a failed
//! `accept` at once and logs every failure, so when descriptors ran out it spun and wrote
//! gigabytes of log; the front caps connections below the descriptor limit
//! ([`max_connections`], a share per source address) and backs off when the system refuses a
//! socket. Logins are still rumqttd's, on the credentials the client sends — except on a TLS
//! listener, where `broker_gate` identifies each agent by its certificate, holds it to its own
//! topics, and logs it in with the gate's account.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

use crate::app::broker_gate::{GATE_USER, Gate};
use crate::health::counters::BrokerStats;

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
    /// The password of the TLS gate's account ([`broker_gate::GATE_USER`]), which it gives the
    /// agents it identified by certificate (made fresh at each start, never written down).
    pub gate: Option<String>,
}

/// Accept MQTT clients on `public` and relay each to rumqttd at `internal`, within the caps.
async fn front(
    public: tokio::net::TcpListener,
    internal: SocketAddr,
    gate: Option<Arc<Gate>>,
    stats: Arc<BrokerStats>,
) {
    let total = max_connections();
    let per_source = (total / 2).max(4);
    let slots = Arc::new(tokio::sync::Semaphore::new(total));
    let open: Arc<std::sync::Mutex<HashMap<std::net::IpAddr, usize>>> = Arc::default();
    let mut backoff = std::time::Duration::from_millis(5);
    let mut logged: Option<tokio::time::Instant> = None;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { return };
        let (client, peer) = match public.accept().await {
            Ok(x) => {
                backoff = std::time::Duration::from_millis(5);
                x
            }
            Err(error) => {
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if logged.is_none_or(|t| t.elapsed() > std::time::Duration::from_secs(60)) {
                    logged = Some(tokio::time::Instant::now());
                    tracing::error!(error = %error, "mqtt: cannot accept connections (logged once a minute)");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                continue;
            }
        };
        let ip = peer.ip();
        {
            let mut open = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = open.entry(ip).or_default();
            if *n >= per_source {
                stats.refused_connections.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            *n += 1;
        }
        stats.open.fetch_add(1, Ordering::Relaxed);
        let (open, stats, gate) = (open.clone(), stats.clone(), gate.clone());
        tokio::spawn(async move {
            let _slot = slot;
            let _ = client.set_nodelay(true);
            match gate {
                Some(gate) => gate.serve(client, peer, internal).await,
                None => {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect(internal).await {
                        let _ = upstream.set_nodelay(true);
                        let mut client = client;
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                    }
                }
            }
            let mut open = open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(n) = open.get_mut(&ip) {
                *n -= 1;
                if *n == 0 {
                    open.remove(&ip);
                }
            }
            stats.open.fetch_sub(1, Ordering::Relaxed);
        });
    }
}

impl Accounts {
    /// The login decision, also used by the tests: may `client_id` log in as `user`?
    pub fn allows(&self, client_id: &str, user: &str, password: &str) -> bool {
        let matches = |(u, p): (&str, &str)| u == user && crate::auth::constant_eq(p, password);
        let agents = matches((&self.agents.0, &self.agents.1));
        let local = self.local.as_ref().is_some_and(|(u, p, _)| matches((u, p)));
        let gate = self.gate.as_ref().is_some_and(|p| matches((GATE_USER, p)));
        if client_id.starts_with(COLLECTOR_CLIENT_PREFIX) {
            return false;
        }
        match &self.local {
            Some((_, _, id)) if id == client_id => local,
            _ => agents || local || gate,
        }
    }
}

/// The most MQTT clients at once: a quarter of the file descriptor limit (each costs two, the
/// client's and the relay's), so HTTP connections, the database and the spool keep theirs.
pub fn max_connections() -> usize {
    let soft = crate::app::limits::open_files().0;
    usize::try_from(soft / 4).unwrap_or(usize::MAX).clamp(16, 10_000)
}

/// Start the broker for `accounts` behind a front on `listen` (with `gate`, a TLS listener for
/// agents with certificates); returns the collector's
/// in-process links (the first to use, the others spares for when it fails: rumqttd makes
/// links only before it starts).
pub async fn start(
    listen: SocketAddr,
    accounts: Accounts,
    gate: Option<Arc<Gate>>,
    stats: Arc<BrokerStats>,
) -> Result<Vec<(LinkTx, LinkRx)>, BrokerError> {
    let public =
        tokio::net::TcpListener::bind(listen).await.map_err(|source| BrokerError::Bind { addr: listen, source })?;
    // rumqttd binds on its own thread and only logs a failure; take a free loopback port for it
    // here, so a failure is found out now.
    let internal = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")
            .map_err(|source| BrokerError::Bind { addr: "127.0.0.1:0".parse().unwrap_or(listen), source })?;
        probe.local_addr().map_err(|source| BrokerError::Bind { addr: listen, source })?
    };
    let links = start_rumqttd(internal, accounts, stats.clone())?;
    tokio::spawn(front(public, internal, gate, stats));
    Ok(links)
}

fn start_rumqttd(
    listen: SocketAddr,
    accounts: Accounts,
    stats: Arc<BrokerStats>,
) -> Result<Vec<(LinkTx, LinkRx)>, BrokerError> {
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
            // The front admits at most max_connections(); the router's own cap is the backstop.
            max_connections: max_connections() + LINKS + 16,
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
            gate: Some("gate-secret".into()),
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
            ("vakt-agent-web-02", GATE_USER, "gate-secret", true),
            ("vakt-agent-web-02", GATE_USER, "shared", false),
            ("vakt-agent-host1", GATE_USER, "gate-secret", false),
            ("vakt-collector", GATE_USER, "gate-secret", false),
        ];
        for (client, user, password, want) in table {
            assert_eq!(accounts.allows(client, user, password), want, "{client} as {user}/{password}");
        }
    }
}

/// A log filter for what rumqttd 0.20 calls an error but is routine on every clean
/// disconnect (and so on every clean stop of `up`, whose local agent says goodbye):
/// `router-drop`, written when the router closes the link of a client that sent DISCONNECT,
/// and `no-connection id N is already gone`, when the closed socket's own disconnect follows
/// (rumqttd's comment: "double Disconnect packets"). Every other rumqttd line passes.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoutineBrokerLines;

impl<S> tracing_subscriber::layer::Filter<S> for RoutineBrokerLines {
    fn enabled(&self, _: &tracing::Metadata<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        true
    }

    fn event_enabled(&self, event: &tracing::Event<'_>, _: &tracing_subscriber::layer::Context<'_, S>) -> bool {
        let target = event.metadata().target();
        if !target.starts_with("rumqttd::") {
            return true;
        }
        let message = message(event);
        let routine = (target.starts_with("rumqttd::server") && message == "router-drop")
            || (target.starts_with("rumqttd::router")
                && message.starts_with("no-connection id ")
                && message.ends_with(" is already gone"));
        !routine
    }
}

/// An event's message.
fn message(event: &tracing::Event<'_>) -> String {
    struct Message(String);
    impl tracing::field::Visit for Message {
        fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
            if field.name() == "message" {
                self.0 = value.to_string();
            }
        }
        fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = format!("{value:?}");
            }
        }
    }
    let mut found = Message(String::new());
    event.record(&mut found);
    found.0
}

#[cfg(test)]
mod routine_tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::RoutineBrokerLines;

    /// What gets through the filter, written to a buffer.
    fn logged(emit: impl FnOnce()) -> String {
        use tracing_subscriber::Layer;
        let buffer = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = {
            let buffer = buffer.clone();
            move || Writer(buffer.clone())
        };
        let layer =
            tracing_subscriber::fmt::layer().with_writer(writer).with_ansi(false).with_filter(RoutineBrokerLines);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), emit);
        let bytes = buffer.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    struct Writer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Writer {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_clean_disconnect_is_not_an_error_and_everything_else_passes() {
        let out = logged(|| {
            tracing::error!(target: "rumqttd::server::broker", error = "Recv(Disconnected)", "router-drop");
            tracing::error!(target: "rumqttd::server::broker", error = "Io(..)", "disconnected");
            tracing::error!(target: "rumqttd::router::routing", "no-connection id {} is already gone", 4);
            tracing::error!(target: "rumqttd::router::routing", "no-connection id {} is lost", 4);
            tracing::error!(target: "collector::app", "router-drop");
            tracing::info!(target: "rumqttd::server::broker", "connection");
        });
        assert!(!out.contains("Recv(Disconnected)"), "{out}");
        assert!(!out.contains("already gone"), "{out}");
        assert!(out.contains("disconnected") && out.contains("collector::app") && out.contains("is lost"), "{out}");
        assert_eq!(out.lines().count(), 4, "{out}");
    }
}
