//! The embedded broker for `vakt-collector up`: rumqttd on its own threads, MQTT 3.1.1 on one
//! TCP listener with username/password auth, memory bounded by small commitlog segments.
//!
//! rumqttd has no shutdown (rumqtt #771): the broker lives as long as the process. It keeps
//! nothing on disk either; the agents' spools and acks are what make delivery durable.

use std::collections::HashMap;
use std::net::SocketAddr;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};

/// Why the broker could not start.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("MQTT listen address {addr} is not available")]
    Bind { addr: SocketAddr, source: std::io::Error },
    #[error("attaching the collector to the embedded broker: {0}")]
    Link(String),
}

/// Start the broker on `listen`, accepting `username`/`password`; returns the collector's
/// in-process link.
pub fn start(listen: SocketAddr, username: &str, password: &str) -> Result<(LinkTx, LinkRx), BrokerError> {
    // rumqttd binds on its own thread and only logs a failure; find out here instead.
    drop(std::net::TcpListener::bind(listen).map_err(|source| BrokerError::Bind { addr: listen, source })?);
    let connections = ConnectionSettings {
        connection_timeout_ms: 5000,
        max_payload_size: protocol::codec::MAX_PAYLOAD + 4096,
        max_inflight_count: 100,
        auth: Some(HashMap::from([(username.to_string(), password.to_string())])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings { name: "agents".into(), listen, tls: None, next_connection_delay_ms: 1, connections };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_010,
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
    let link = broker.link("vakt-collector").map_err(|e| BrokerError::Link(e.to_string()))?;
    std::thread::Builder::new()
        .name("mqtt-broker".into())
        .spawn(move || {
            if let Err(error) = broker.start() {
                tracing::error!(error = %error, "embedded broker stopped");
            }
        })
        .map_err(|e| BrokerError::Link(e.to_string()))?;
    Ok(link)
}
