//! Serving HTTP connections without letting clients exhaust the process: a connection cap
//! below the file descriptor limit, a smaller cap per source address, a deadline for every
//! request's headers (which is also the idle timeout between keep-alive requests), a deadline
//! for each whole request, one for a connection's life, and an accept loop that backs off when
//! the system refuses a socket instead of spinning.
//!
//! Measured against the old `axum::serve`: 1,100 idle connections under a 1024 descriptor
//! limit took every descriptor (the in-process agent could no longer open its spool, the
//! broker logged its accept failure in a busy loop), and 2,000 slowloris sockets stayed open
//! indefinitely. Here connections past a source's share are closed at once, connections past
//! the total wait in the kernel's backlog without a descriptor, and a socket that sends no
//! complete header is closed after [`HEADER_TIMEOUT`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};

/// A request's headers must arrive within this (and a kept-alive connection may idle this long).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// A whole request, body and handler included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// A connection is closed after this, however busy (a client reconnects).
pub const CONNECTION_LIFETIME: Duration = Duration::from_secs(600);
/// TLS handshakes must finish within this.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How many connections may be open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    pub total: usize,
    pub per_source: usize,
}

impl ConnectionLimits {
    /// A quarter of the descriptor limit for HTTP (the broker gets half, the rest is for files,
    /// the database and the agent), and an eighth of that per source address.
    pub fn from_open_files(soft_limit: u64) -> ConnectionLimits {
        let total = usize::try_from(soft_limit / 4).unwrap_or(usize::MAX).clamp(16, 16_384);
        ConnectionLimits { total, per_source: (total / 8).max(4) }
    }
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct ServeStats {
    pub open: AtomicU64,
    /// Closed at once because their source had its share open.
    pub refused_per_source: AtomicU64,
    /// Accepts the system refused (descriptors, memory).
    pub accept_errors: AtomicU64,
}

/// Connections open per source address.
#[derive(Debug, Default)]
struct PerSource {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// Held while a connection is open.
#[derive(Debug)]
struct Admission {
    per_source: Arc<PerSource>,
    ip: IpAddr,
    stats: Arc<ServeStats>,
    _slot: OwnedSemaphorePermit,
}

impl Drop for Admission {
    fn drop(&mut self) {
        let mut open = self.per_source.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The same address for both IP versions (`::ffff:a.b.c.d` is `a.b.c.d`).
fn source_of(addr: &SocketAddr) -> IpAddr {
    match addr.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// Serve `app` on `listener` until `stop` turns true; with `tls`, HTTPS.
pub async fn serve(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    app: Router,
    limits: ConnectionLimits,
    stats: Arc<ServeStats>,
    mut stop: watch::Receiver<bool>,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(limits.total));
    let per_source = Arc::new(PerSource::default());
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let mut backoff = Duration::from_millis(5);
    let mut logged_at: Option<tokio::time::Instant> = None;
    loop {
        // A slot first: past the total, clients wait in the backlog, holding no descriptor here.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => return Ok(()),
            },
            () = stopped(&mut stop) => break,
        };
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stopped(&mut stop) => break,
        };
        let (stream, peer) = match accepted {
            Ok(x) => {
                backoff = Duration::from_millis(5);
                x
            }
            Err(error) => {
                // EMFILE, ENFILE, ENOMEM: retrying at once would spin. Back off, log once in a while.
                stats.accept_errors.fetch_add(1, Ordering::Relaxed);
                if logged_at.is_none_or(|t| t.elapsed() > Duration::from_secs(60)) {
                    logged_at = Some(tokio::time::Instant::now());
                    tracing::error!(error = %error, "http: cannot accept connections (logged once a minute)");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let ip = source_of(&peer);
        {
            let mut open = per_source.open.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let n = open.entry(ip).or_default();
            if *n >= limits.per_source {
                stats.refused_per_source.fetch_add(1, Ordering::Relaxed);
                drop(stream);
                continue;
            }
            *n += 1;
        }
        stats.open.fetch_add(1, Ordering::Relaxed);
        let admission = Admission { per_source: per_source.clone(), ip, stats: stats.clone(), _slot: slot };
        let app = app.clone();
        let acceptor = acceptor.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let _admission = admission;
            let _ = stream.set_nodelay(true);
            let served = tokio::time::timeout(CONNECTION_LIFETIME, connection(stream, peer, acceptor, app, stop));
            let _ = served.await;
        });
    }
    // Let open requests finish: each connection sees `stop` and closes after its response.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while stats.open.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

/// One connection: the TLS handshake if any, then HTTP/1.1 with the header deadline.
async fn connection(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    stop: watch::Receiver<bool>,
) {
    let service = tower::ServiceExt::map_request(app, move |mut request: hyper::Request<hyper::body::Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        request
    });
    let service = tower::ServiceBuilder::new().layer(TimeoutLayer).service(service);
    let service = hyper_util::service::TowerToHyperService::new(service);
    match acceptor {
        Some(acceptor) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => http1(TokioIo::new(tls), service, stop).await,
            Ok(Err(error)) => tracing::debug!(peer = %peer, error = %error, "https: handshake failed"),
            Err(_) => tracing::debug!(peer = %peer, "https: handshake timed out"),
        },
        None => http1(TokioIo::new(stream), service, stop).await,
    }
}

async fn http1<I, S>(io: I, service: S, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<hyper::Request<hyper::body::Incoming>, Response = axum::response::Response>
        + Send
        + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    // `half_close`: a client that shuts its sending side after the request still gets its
    // answer, and its request is handled to the end (without it hyper dropped the handler, and
    // with it the refusal's audit record, for about one such client in a hundred).
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .keep_alive(true)
        .half_close(true)
        .max_buf_size(64 << 10);
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        () = stopped(&mut stop) => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

/// Resolves once `stop` turns true (the watch guard is not held across an await).
async fn stopped(stop: &mut watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

/// Answers 503 when a request takes longer than [`REQUEST_TIMEOUT`] (a body trickled in byte
/// by byte, a handler stuck on the store).
#[derive(Debug, Clone, Copy)]
struct TimeoutLayer;

impl<S> tower::Layer<S> for TimeoutLayer {
    type Service = Timeout<S>;
    fn layer(&self, inner: S) -> Timeout<S> {
        Timeout { inner }
    }
}

#[derive(Debug, Clone)]
struct Timeout<S> {
    inner: S,
}

impl<S, R> tower::Service<R> for Timeout<S>
where
    S: tower::Service<R, Response = axum::response::Response, Error = std::convert::Infallible>,
    S::Future: Send + 'static,
{
    type Response = axum::response::Response;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        let call = self.inner.call(request);
        Box::pin(async move {
            match tokio::time::timeout(REQUEST_TIMEOUT, call).await {
                Ok(response) => response,
                Err(_) => Ok(axum::response::IntoResponse::into_response((
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "request took too long\n",
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_stay_below_the_descriptor_limit() {
        let l = ConnectionLimits::from_open_files(1024);
        assert_eq!(l, ConnectionLimits { total: 256, per_source: 32 });
        assert!(ConnectionLimits::from_open_files(1_048_576).total <= 16_384);
        assert_eq!(ConnectionLimits::from_open_files(10).total, 16);
    }
}
