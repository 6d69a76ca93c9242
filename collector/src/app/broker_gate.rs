//! The embedded broker's door for agents on other hosts: TLS (rustls) that requires a client
//! certificate from the collector's CA, and a reader of each client's MQTT packets that lets
//! an agent act only as itself — the embedded broker's equivalent of the Mosquitto ACL
//! (`Topics::mosquitto_acl`), since rumqttd has no per-client topic rights.
//!
//! For each connection that [`broker::front`](super::broker) hands over:
//! 1. A client on this host (loopback, or the listener's own address) may speak plaintext and
//!    log in with a password, as on a loopback listener; everyone else must start TLS.
//! 2. The TLS handshake (10 s at most) checks the certificate against the CA; its one common
//!    name is the agent id, and the store must know the certificate as that agent's, not
//!    retired, the agent not revoked (`Store::certificate_standing`) — at connect and every
//!    15 s after, so a revocation or the certificate's end cuts a connection off.
//! 3. The first packet must be CONNECT with the agent's own client id (`vakt-agent-ID`) and,
//!    if it has a Will, a Will on its own state topic. Its login is replaced by the gate's
//!    account, so nothing the client says about user or password matters.
//! 4. After that, each PUBLISH must be on the agent's own state, heartbeat or result topics
//!    and each SUBSCRIBE only to its own acks and commands and the collector's state
//!    (`Topics::agent_may_publish`, `agent_may_subscribe`). The first packet out of bounds
//!    closes the connection: nothing of it reaches the broker.
//!
//! Every refusal is counted (`BrokerStats`), logged once a minute, and audited in aggregate
//! (`Denials`), so a flood of them cannot fill the disk.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use bytes::BytesMut;
use protocol::{AgentId, Topics};
use rumqttc::mqttbytes::v4::Packet;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::auth::ca::{Authority, Ca, Presented};
use crate::health::counters::BrokerStats;
use crate::http::denials::Denials;
use crate::store::Store;
use crate::store::audit::{Entry, Who};

/// The gate's own account on rumqttd: clients it let through log in with it.
pub const GATE_USER: &str = "vakt-gate";
/// How long the server certificate lives; it is issued again every [`REISSUE`].
pub const SERVER_LIFETIME: Duration = Duration::from_secs(30 * 24 * 3600);
pub const REISSUE: Duration = Duration::from_secs(24 * 3600);
/// How long a client has for the TLS handshake and then for its CONNECT.
const HANDSHAKE: Duration = Duration::from_secs(10);
/// How often a connected agent's certificate is checked again.
const RECHECK: Duration = Duration::from_secs(15);
const MAX_PACKET: usize = protocol::codec::MAX_PAYLOAD + 4096;

/// Where refusals go.
#[derive(Debug, Clone)]
pub struct Outlets {
    pub store: Store,
    pub denials: Arc<Denials>,
    pub stats: Arc<BrokerStats>,
}

/// The gate: the CA, the names its server certificate carries, and the account it logs in
/// with.
pub struct Gate {
    ca: Arc<Authority>,
    names: Vec<String>,
    tls: std::sync::RwLock<TlsAcceptor>,
    topics: Topics,
    login: String,
    out: Outlets,
    logged: std::sync::Mutex<Option<tokio::time::Instant>>,
}

impl std::fmt::Debug for Gate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gate").field("names", &self.names).finish_non_exhaustive()
    }
}

/// Why a connection was closed.
#[derive(Debug)]
enum Refused {
    Plaintext,
    /// The store could not say whether a certificate is current: a new connection is refused
    /// (fail closed), one already in good standing is kept.
    StoreSilent,
    Certificate(String),
    Packet(String),
}

impl Gate {
    /// A gate whose server certificate names `names` and whose clients log in to rumqttd with
    /// `login` (the password of [`GATE_USER`]).
    pub fn new(
        ca: Arc<Authority>,
        names: Vec<String>,
        topics: Topics,
        login: String,
        out: Outlets,
    ) -> Result<Gate, String> {
        let tls = std::sync::RwLock::new(acceptor(&ca.ca, &names)?);
        Ok(Gate { ca, names, tls, topics, login, out, logged: Default::default() })
    }

    /// Issue the server certificate again every day, for as long as the process runs.
    pub async fn keep_certificate_fresh(self: Arc<Self>) {
        loop {
            tokio::time::sleep(REISSUE).await;
            match acceptor(&self.ca.ca, &self.names) {
                Ok(fresh) => *self.tls.write().unwrap_or_else(std::sync::PoisonError::into_inner) = fresh,
                Err(error) => {
                    tracing::error!(error = %error, "mqtt: cannot issue the TLS listener's certificate again")
                }
            }
        }
    }

    /// Serve one client accepted on the public listener, relaying what it may do to rumqttd at
    /// `internal`.
    pub async fn serve(&self, client: TcpStream, peer: SocketAddr, internal: SocketAddr) {
        let mut first = [0u8; 1];
        let local = client.local_addr().map(|a| a.ip()).ok();
        let peeked = tokio::time::timeout(HANDSHAKE, client.peek(&mut first)).await;
        if !matches!(peeked, Ok(Ok(1))) {
            return;
        }
        // 0x16: a TLS handshake record. Anything else is MQTT in plaintext.
        if first[0] != 0x16 {
            if peer.ip().is_loopback() || Some(peer.ip()) == local {
                relay_plain(client, internal).await;
            } else {
                self.refuse(&peer, None, Refused::Plaintext);
            }
            return;
        }
        let accept = self.tls.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone().accept(client);
        let tls = match tokio::time::timeout(HANDSHAKE, accept).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(error)) => return self.refuse(&peer, None, Refused::Certificate(format!("TLS: {error}"))),
            Err(_) => return self.refuse(&peer, None, Refused::Certificate("TLS handshake timed out".into())),
        };
        let presented = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|chain| chain.first())
            .ok_or_else(|| "no client certificate".to_string())
            .and_then(|cert| Ca::identify(cert));
        let (presented, ends) = match presented {
            Ok(p) => p,
            Err(why) => return self.refuse(&peer, None, Refused::Certificate(why)),
        };
        let agent = presented.agent.clone();
        if let Err(refused) = self.standing(&presented, ends).await {
            return self.refuse(&peer, Some(&agent), refused);
        }
        let Ok(upstream) = TcpStream::connect(internal).await else { return };
        let _ = upstream.set_nodelay(true);
        if let Err(refused) = self.relay_agent(tls, upstream, &presented, ends).await {
            self.refuse(&peer, Some(&agent), refused);
        }
    }

    /// Whether the certificate still speaks for its agent: current in the store and not past
    /// its end (the handshake checked that only when the connection opened).
    async fn standing(&self, presented: &Presented, ends: SystemTime) -> Result<(), Refused> {
        if SystemTime::now() >= ends {
            return Err(Refused::Certificate("the certificate has expired".into()));
        }
        match self.out.store.certificate_standing(presented.agent.as_str(), &presented.serial).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(refusal)) => Err(Refused::Certificate(refusal.as_str().to_string())),
            // Said by `refuse` (once a minute) for a new connection; the store's own health
            // says the rest.
            Err(_) => Err(Refused::StoreSilent),
        }
    }

    /// Relay an identified agent's connection, checking what it sends, and its certificate
    /// again every [`RECHECK`]: a revoked agent is cut off, not only kept from reconnecting.
    async fn relay_agent<C>(
        &self,
        client: C,
        upstream: TcpStream,
        presented: &Presented,
        ends: SystemTime,
    ) -> Result<(), Refused>
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        let agent = &presented.agent;
        let (mut client_rx, mut client_tx) = tokio::io::split(client);
        let (mut up_rx, mut up_tx) = upstream.into_split();
        let down = async {
            let _ = tokio::io::copy(&mut up_rx, &mut client_tx).await;
            let _ = client_tx.shutdown().await;
        };
        let up = async {
            let mut buf = BytesMut::with_capacity(8 * 1024);
            let mut connected = false;
            loop {
                let frame = match rumqttc::mqttbytes::check(buf.iter(), MAX_PACKET) {
                    Ok(header) => buf.split_to(header.frame_length()),
                    Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {
                        let read = if connected {
                            client_rx.read_buf(&mut buf).await
                        } else {
                            tokio::time::timeout(HANDSHAKE, client_rx.read_buf(&mut buf))
                                .await
                                .map_err(|_| Refused::Packet("no CONNECT in time".into()))?
                        };
                        match read {
                            Ok(0) | Err(_) => return Ok(()),
                            Ok(_) => continue,
                        }
                    }
                    Err(error) => return Err(Refused::Packet(format!("malformed packet: {error}"))),
                };
                let packet = Packet::read(&mut frame.clone(), MAX_PACKET)
                    .map_err(|e| Refused::Packet(format!("malformed packet: {e}")))?;
                let forward = self.admit(agent, packet, connected, frame)?;
                connected = true;
                if up_tx.write_all(&forward).await.is_err() {
                    return Ok(());
                }
            }
        };
        let recheck = async {
            loop {
                tokio::time::sleep(RECHECK).await;
                // A store that does not answer keeps a connection that was in good standing:
                // only new connections fail closed.
                match self.standing(presented, ends).await {
                    Ok(()) | Err(Refused::StoreSilent) => {}
                    Err(refused) => return refused,
                }
            }
        };
        tokio::select! {
            result = up => result,
            () = down => Ok(()),
            refused = recheck => Err(refused),
        }
    }

    /// The bytes to pass on for `packet` (its `frame` as received, or a CONNECT rewritten to
    /// the gate's login), or why the connection ends.
    fn admit(&self, agent: &AgentId, packet: Packet, connected: bool, frame: BytesMut) -> Result<BytesMut, Refused> {
        let refuse = |why: String| Err(Refused::Packet(why));
        match packet {
            Packet::Connect(mut connect) if !connected => {
                let own = format!("vakt-agent-{agent}");
                if connect.client_id != own {
                    return refuse(format!("CONNECT as client id {:?}, not {own}", clip(&connect.client_id)));
                }
                if let Some(will) = &connect.last_will
                    && !self.topics.agent_may_publish(agent, &will.topic)
                {
                    return refuse(format!("a Will on {:?}", clip(&will.topic)));
                }
                connect.set_login(GATE_USER, self.login.as_str());
                let mut out = BytesMut::new();
                Packet::Connect(connect)
                    .write(&mut out, MAX_PACKET)
                    .map_err(|e| Refused::Packet(format!("CONNECT: {e}")))?;
                Ok(out)
            }
            _ if !connected => refuse("the first packet is not CONNECT".into()),
            Packet::Connect(_) => refuse("a second CONNECT".into()),
            Packet::Publish(publish) if !self.topics.agent_may_publish(agent, &publish.topic) => {
                refuse(format!("PUBLISH on {:?}", clip(&publish.topic)))
            }
            Packet::Subscribe(subscribe) => {
                match subscribe.filters.iter().find(|f| !self.topics.agent_may_subscribe(agent, &f.path)) {
                    Some(filter) => refuse(format!("SUBSCRIBE to {:?}", clip(&filter.path))),
                    None => Ok(frame),
                }
            }
            _ => Ok(frame),
        }
    }

    fn refuse(&self, peer: &SocketAddr, agent: Option<&AgentId>, refused: Refused) {
        let (n, what, detail) = match &refused {
            Refused::Certificate(why) => (0, "certificate", why.as_str()),
            Refused::StoreSilent => (0, "certificate", "the store did not answer"),
            Refused::Packet(why) => (1, "packet", why.as_str()),
            Refused::Plaintext => {
                (2, "plaintext", "plaintext from another host; this listener needs TLS with a client certificate")
            }
        };
        let stats = &self.out.stats;
        [&stats.refused_certificates, &stats.refused_packets, &stats.refused_plaintext][n]
            .fetch_add(1, Ordering::Relaxed);
        {
            let mut logged = self.logged.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if logged.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                *logged = Some(tokio::time::Instant::now());
                tracing::warn!(peer = %peer, agent = ?agent.map(AgentId::as_str), refused = what, why = detail, "mqtt: connection refused (logged once a minute; all are counted and audited)");
            }
        }
        let name = agent.map_or_else(|| format!("mqtt:{}", peer.ip()), |a| format!("agent:{a}"));
        let who = Who { name, role: "agent".into(), source: peer.ip().to_string(), request_id: String::new() };
        let object = agent.map_or_else(|| "broker".to_string(), |a| format!("agent:{a}"));
        let entry = Entry { action: "broker.connect", object: &object, outcome: "refused", detail };
        self.out.denials.record(&who, entry, crate::now_ms());
    }
}

/// A client string in a refusal: at most 120 characters; `{:?}` escapes the rest.
fn clip(s: &str) -> String {
    s.chars().take(120).collect()
}

async fn relay_plain(mut client: TcpStream, internal: SocketAddr) {
    if let Ok(mut upstream) = TcpStream::connect(internal).await {
        let _ = upstream.set_nodelay(true);
        let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
    }
}

/// A TLS acceptor with a fresh server certificate for `names` that requires client
/// certificates from `ca`.
fn acceptor(ca: &Ca, names: &[String]) -> Result<TlsAcceptor, String> {
    use rustls::pki_types::CertificateDer;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let (chain, key) = ca.issue_server_chain(names, SystemTime::now(), SERVER_LIFETIME)?;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(CertificateDer::from(ca.der().to_vec())).map_err(|e| format!("the CA: {e}"))?;
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map_err(|e| format!("client verifier: {e}"))?;
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// The names the server certificate carries by default: this host's name, `localhost` and the
/// loopback addresses, and the listen address unless it is a wildcard.
pub fn default_names(listen: SocketAddr) -> Vec<String> {
    let mut names = Vec::new();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let host = host.trim();
    if !host.is_empty() && host != "localhost" {
        names.push(host.to_string());
    }
    names.extend(["localhost".to_string(), "127.0.0.1".into(), "::1".into()]);
    if !listen.ip().is_unspecified() && !names.contains(&listen.ip().to_string()) {
        names.push(listen.ip().to_string());
    }
    names
}

/// Whether an MQTT listener on `listen` must be TLS: always beyond loopback, unless the
/// operator said `--insecure-plaintext`; on loopback only when asked (`--mqtt-tls`).
pub fn needs_tls(listen: SocketAddr, asked: bool, insecure_plaintext: bool) -> bool {
    asked || (!listen.ip().is_loopback() && !insecure_plaintext)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[tokio::test]
    async fn an_identified_agent_connects_publishes_and_subscribes_only_as_itself() {
        use rumqttc::mqttbytes::QoS;
        use rumqttc::mqttbytes::v4::{Connect, LastWill, Publish, Subscribe};
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("vakt.db")).await.unwrap();
        let (ca, _) = Ca::generate(SystemTime::now()).unwrap();
        let authority = Arc::new(Authority {
            ca,
            lifetime: Duration::from_secs(3600),
            collector_key: String::new(),
            message_root: [7; 32],
        });
        let out = Outlets { store, denials: Arc::default(), stats: Arc::default() };
        let gate =
            Gate::new(authority, vec!["localhost".into()], Topics::default(), "gate-secret".into(), out).unwrap();
        let agent = AgentId::new("web-01").unwrap();
        let admit =
            |packet: Packet, connected: bool| gate.admit(&agent, packet, connected, BytesMut::from(&b"frame"[..]));

        let mut own = Connect::new("vakt-agent-web-01");
        own.set_login("web-01", "whatever it says");
        own.last_will = Some(LastWill::new("vakt/v1/agents/web-01/state", "dead", QoS::AtLeastOnce, true));
        let rewritten = admit(Packet::Connect(own), false).unwrap();
        let Packet::Connect(sent) = Packet::read(&mut rewritten.clone(), MAX_PACKET).unwrap() else { panic!() };
        let login = sent.login.unwrap();
        assert_eq!((login.username.as_str(), login.password.as_str()), (GATE_USER, "gate-secret"));

        let refused = |packet: Packet, connected: bool| matches!(admit(packet, connected), Err(Refused::Packet(_)));
        assert!(refused(Packet::Connect(Connect::new("vakt-agent-web-02")), false), "another's client id");
        let mut will = Connect::new("vakt-agent-web-01");
        will.last_will = Some(LastWill::new("vakt/v1/agents/web-02/state", "dead", QoS::AtLeastOnce, true));
        assert!(refused(Packet::Connect(will), false), "a Will for another");
        assert!(refused(Packet::PingReq, false), "anything before CONNECT");
        assert!(refused(Packet::Connect(Connect::new("vakt-agent-web-01")), true), "a second CONNECT");

        let publish = |topic: &str| Packet::Publish(Publish::new(topic, QoS::AtLeastOnce, "x"));
        assert_eq!(&admit(publish("vakt/v1/agents/web-01/results/load"), true).unwrap()[..], b"frame");
        assert!(refused(publish("vakt/v1/agents/web-02/results/load"), true));
        assert!(refused(publish("vakt/v1/agents/web-01/ack"), true), "its own ack is the collector's to send");
        assert!(refused(publish("vakt/v1/collector/state"), true));
        let subscribe = |filter: &str| Packet::Subscribe(Subscribe::new(filter, QoS::AtLeastOnce));
        assert!(admit(subscribe("vakt/v1/agents/web-01/commands"), true).is_ok());
        assert!(refused(subscribe("vakt/v1/#"), true));
        assert!(refused(subscribe("vakt/v1/agents/+/results/+"), true));
        assert!(admit(Packet::PingReq, true).is_ok());
    }

    #[test]
    fn beyond_loopback_the_listener_is_tls_unless_plaintext_is_asked_for() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(!needs_tls(at("127.0.0.1:1883"), false, false));
        assert!(!needs_tls(at("[::1]:1883"), false, false));
        assert!(needs_tls(at("127.0.0.1:8883"), true, false));
        assert!(needs_tls(at("0.0.0.0:8883"), false, false));
        assert!(needs_tls(at("10.1.2.3:8883"), false, false));
        assert!(!needs_tls(at("0.0.0.0:1883"), false, true));
        let names = default_names(at("10.1.2.3:8883"));
        assert!(names.contains(&"10.1.2.3".to_string()) && names.contains(&"localhost".to_string()), "{names:?}");
        assert!(!default_names(at("0.0.0.0:8883")).contains(&"0.0.0.0".to_string()));
    }
}
