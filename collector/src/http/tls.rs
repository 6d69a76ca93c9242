//! HTTPS for the collector's web side: a certificate and key from PEM files, and a listener
//! that completes TLS handshakes off the accept path (a slow or silent client cannot hold up
//! other connections; each handshake has 10 seconds).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// A server config from a PEM certificate chain and a PEM private key.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<rustls::ServerConfig>, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let certs: Vec<_> = rustls_pemfile::certs(&mut read(cert)?.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate in it", cert.display()));
    }
    let key = rustls_pemfile::private_key(&mut read(key)?.as_slice())
        .map_err(|e| format!("{}: {e}", key.display()))?
        .ok_or_else(|| format!("{}: no private key in it", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key: {e}"))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A server certificate that is replaced while the listener serves (one the collector's CA
/// issues, again every day): each handshake takes the one current then.
#[derive(Debug)]
pub struct Replaceable(std::sync::RwLock<Arc<rustls::sign::CertifiedKey>>);

type Chain = (Vec<rustls::pki_types::CertificateDer<'static>>, rustls::pki_types::PrivateKeyDer<'static>);

fn certified((chain, key): Chain) -> Result<Arc<rustls::sign::CertifiedKey>, String> {
    let signer = rustls::crypto::ring::sign::any_supported_type(&key).map_err(|e| format!("the key: {e}"))?;
    Ok(Arc::new(rustls::sign::CertifiedKey::new(chain, signer)))
}

impl Replaceable {
    pub fn new(first: Chain) -> Result<Arc<Replaceable>, String> {
        Ok(Arc::new(Replaceable(std::sync::RwLock::new(certified(first)?))))
    }

    /// Present this chain from the next handshake on.
    pub fn replace(&self, next: Chain) -> Result<(), String> {
        let next = certified(next)?;
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = next;
        Ok(())
    }

    /// A server config presenting the current chain.
    pub fn config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, String> {
        let mut config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?
                .with_no_client_auth()
                .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl rustls::server::ResolvesServerCert for Replaceable {
    fn resolve(&self, _hello: rustls::server::ClientHello<'_>) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }
}

/// SHA-256 (lowercase hex) of the first certificate in a PEM file: what `vakt-agent enroll
/// --ca-fingerprint` pins.
pub fn fingerprint(cert: &Path) -> Result<String, String> {
    use sha2::Digest;
    let bytes = std::fs::read(cert).map_err(|e| format!("{}: {e}", cert.display()))?;
    let first = rustls_pemfile::certs(&mut bytes.as_slice())
        .next()
        .ok_or_else(|| format!("{}: no certificate in it", cert.display()))?
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    Ok(hex::encode(sha2::Sha256::digest(first.as_ref())))
}

/// Accepts TCP connections and hands out the ones whose TLS handshake completed.
#[derive(Debug)]
pub struct TlsListener {
    local: SocketAddr,
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
}

impl TlsListener {
    pub fn new(tcp: TcpListener, config: Arc<rustls::ServerConfig>) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        tokio::spawn(async move {
            loop {
                let (stream, peer) = match tcp.accept().await {
                    Ok(x) => x,
                    Err(e) => {
                        tracing::warn!(error = %e, "https: accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                if tx.is_closed() {
                    return;
                }
                let (acceptor, handed) = (acceptor.clone(), tx.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let _ = handed.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "https: handshake failed"),
                        Err(_) => tracing::debug!(peer = %peer, "https: handshake timed out"),
                    }
                });
            }
        });
        Ok(TlsListener { local, ready })
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(x) => x,
            // The accept task only ends when this listener is gone.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}
