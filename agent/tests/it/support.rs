//! Shared test fixtures: a runtime, the test plugins, and small real servers on loopback.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use agent::grant::{Grant, GrantSet};
use agent::plugin::{Plugin, PluginSource, RunLimits, RunReport, RunRequest, Runtime, RuntimeConfig};
use agent::probe::ProbeSettings;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, UdpSocket};

/// A runtime with a fresh cache directory and the given probe settings.
pub(crate) fn runtime_with(probes: ProbeSettings) -> (Runtime, tempfile::TempDir) {
    let cache = tempfile::tempdir().unwrap();
    let runtime = Runtime::new(RuntimeConfig {
        concurrency: 4,
        max_memory: 64 << 20,
        cache_dir: Some(cache.path().to_path_buf()),
        pooling: true,
        probes,
        ehlo_name: "vakt-test".into(),
        ..RuntimeConfig::default()
    })
    .unwrap();
    (runtime, cache)
}

pub(crate) fn runtime() -> (Runtime, tempfile::TempDir) {
    runtime_with(ProbeSettings::default())
}

pub(crate) fn plugin_path(name: &str) -> PathBuf {
    PathBuf::from(agent::standard::BUILD_DIR).join(format!("{name}.wasm"))
}

/// A test plugin from `plugins/testing` (not embedded, so not "standard").
pub(crate) fn test_source(name: &str) -> PluginSource {
    PluginSource::new(format!("{name}.wasm"), std::fs::read(plugin_path(name)).unwrap())
}

/// How long a test plugin's `info` may take at load.
pub(crate) const LOAD_TIMEOUT: Duration = Duration::from_secs(10);

pub(crate) async fn load_test(runtime: &Runtime, name: &str) -> Plugin {
    runtime.load(test_source(name), LOAD_TIMEOUT).await.unwrap()
}

pub(crate) async fn load_standard(runtime: &Runtime, name: &str) -> Plugin {
    runtime.load(agent::standard::source(name).unwrap(), LOAD_TIMEOUT).await.unwrap()
}

pub(crate) fn grants(list: &[&str]) -> GrantSet {
    GrantSet::new(list.iter().map(|g| g.parse::<Grant>().unwrap()).collect())
}

pub(crate) fn request(config: &[(&str, &str)], grants: GrantSet, limits: RunLimits) -> RunRequest {
    RunRequest {
        check: "test".into(),
        config: config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        grants,
        limits,
    }
}

/// Run with a generous outer bound, so a broken protection fails the test instead of hanging it.
pub(crate) async fn run(plugin: &Plugin, request: &RunRequest) -> RunReport {
    tokio::time::timeout(Duration::from_secs(60), plugin.run(request))
        .await
        .expect("the run never ended: a limit did not hold")
}

pub(crate) fn limits(timeout_ms: u64, memory: u64) -> RunLimits {
    RunLimits { timeout: Duration::from_millis(timeout_ms), memory, ..RunLimits::default() }
}

/// Accept connections on 127.0.0.1 and hand each to `handle` on its own task.
async fn serve<F, Fut>(handle: F) -> SocketAddr
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(handle(stream));
        }
    });
    addr
}

/// A plain HTTP/1.1 server answering every request with `status` and `body`.
pub(crate) async fn http_server(status: u16, body: &'static str) -> SocketAddr {
    serve(move |stream| async move {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let mut line = String::new();
        // Read the request head.
        loop {
            line.clear();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = write.write_all(response.as_bytes()).await;
    })
    .await
}

/// A server that accepts connections and never says anything.
pub(crate) async fn silent_server() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            held.push(stream);
        }
    });
    addr
}

/// A minimal SMTP server: banner, EHLO reply with the given extensions, QUIT.
pub(crate) async fn smtp_server(banner: &'static str, extensions: &'static [&'static str]) -> SocketAddr {
    serve(move |stream| async move {
        let (read, mut write) = stream.into_split();
        let mut reader = BufReader::new(read);
        let _ = write.write_all(format!("{banner}\r\n").as_bytes()).await;
        let mut line = String::new();
        while reader.read_line(&mut line).await.unwrap_or(0) > 0 {
            let command = line.trim().to_ascii_uppercase();
            line.clear();
            if command.starts_with("EHLO") {
                let mut reply = String::from("250-mx.test greets you\r\n");
                for (i, ext) in extensions.iter().enumerate() {
                    let sep = if i + 1 == extensions.len() { ' ' } else { '-' };
                    reply.push_str(&format!("250{sep}{ext}\r\n"));
                }
                if extensions.is_empty() {
                    reply = "250 mx.test greets you\r\n".into();
                }
                let _ = write.write_all(reply.as_bytes()).await;
            } else if command.starts_with("QUIT") {
                let _ = write.write_all(b"221 bye\r\n").await;
                return;
            }
        }
    })
    .await
}

/// A tiny authoritative DNS server over UDP: A records from `records`, NXDOMAIN for other
/// names. Written from the RFC 1035 wire format; enough for A lookups.
pub(crate) async fn dns_server(records: &'static [(&'static str, [u8; 4])]) -> SocketAddr {
    dns_server_logging(records).await.0
}

/// [`dns_server`], also recording every name it was asked for.
pub(crate) async fn dns_server_logging(
    records: &'static [(&'static str, [u8; 4])],
) -> (SocketAddr, Arc<std::sync::Mutex<Vec<String>>>) {
    let socket = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let asked = Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = asked.clone();
    tokio::spawn(async move {
        let mut buf = [0u8; 512];
        loop {
            let Ok((len, peer)) = socket.recv_from(&mut buf).await else { return };
            let query = &buf[..len];
            if len < 12 {
                continue;
            }
            // Question: labels up to the zero byte, then type and class.
            let mut pos = 12;
            let mut labels = Vec::new();
            while pos < len && query[pos] != 0 {
                let n = query[pos] as usize;
                labels.push(String::from_utf8_lossy(&query[pos + 1..pos + 1 + n]).to_ascii_lowercase());
                pos += 1 + n;
            }
            let question_end = pos + 5;
            let qtype = u16::from_be_bytes([query[pos + 1], query[pos + 2]]);
            let name = labels.join(".");
            log.lock().unwrap().push(name.clone());
            let answer = records.iter().find(|(n, _)| *n == name).map(|(_, ip)| *ip);
            let mut reply = Vec::with_capacity(64);
            reply.extend_from_slice(&query[..2]);
            let (rcode, ancount) = match (answer, qtype) {
                (Some(_), 1) => (0u8, 1u16),
                (Some(_), _) => (0, 0),
                (None, _) => (3, 0),
            };
            reply.extend_from_slice(&[0x85, 0x80 | rcode]);
            reply.extend_from_slice(&1u16.to_be_bytes());
            reply.extend_from_slice(&ancount.to_be_bytes());
            reply.extend_from_slice(&0u16.to_be_bytes());
            reply.extend_from_slice(&0u16.to_be_bytes());
            reply.extend_from_slice(&query[12..question_end]);
            if let (Some(ip), 1) = (answer, qtype) {
                reply.extend_from_slice(&[0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4]);
                reply.extend_from_slice(&ip);
            }
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    (addr, asked)
}

/// A TLS server presenting `cert` (chain) with `key`, answering nothing.
pub(crate) async fn tls_server(
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
) -> SocketAddr {
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { return };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(stream).await {
                    let mut buf = [0u8; 1024];
                    let _ = tls.read(&mut buf).await;
                }
            });
        }
    });
    addr
}

/// A CA and a leaf certificate for `localhost` signed by it, valid between the two offsets
/// from now (in days; negative is in the past).
pub(crate) struct TestPki {
    pub(crate) ca_der: rustls::pki_types::CertificateDer<'static>,
    pub(crate) leaf_der: rustls::pki_types::CertificateDer<'static>,
    pub(crate) leaf_key: rustls::pki_types::PrivateKeyDer<'static>,
}

pub(crate) fn pki(valid_from_days: i64, valid_until_days: i64) -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let now = time_now();
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, "Vakt Test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    leaf_params.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    leaf_params.not_before = now + time::Duration::days(valid_from_days);
    leaf_params.not_after = now + time::Duration::days(valid_until_days);
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    TestPki {
        ca_der: ca.der().clone(),
        leaf_der: leaf.der().clone(),
        leaf_key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

fn time_now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}
