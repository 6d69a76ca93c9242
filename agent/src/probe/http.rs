//! HTTP/1.1 probe over plain TCP or TLS. Redirects are not followed: a 3xx is an answer.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::{AddressPolicy, ProbeError, Prober, within};

/// Largest body excerpt a probe returns.
pub(crate) const MAX_BODY_EXCERPT: usize = 64 << 10;

/// One request.
#[derive(Debug, Clone)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    /// Response headers to return, any case.
    pub want_headers: Vec<String>,
    /// Bytes of body to return (capped at [`MAX_BODY_EXCERPT`]).
    pub body_limit: usize,
    /// Go on when the certificate does not verify.
    pub insecure: bool,
}

/// What came back.
#[derive(Debug, Clone)]
pub struct HttpReply {
    pub address: std::net::SocketAddr,
    pub connect: Duration,
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub body_truncated: bool,
    /// From sending the request to the end of the response headers.
    pub response: Duration,
    /// The whole probe.
    pub total: Duration,
    /// `None` for plain HTTP.
    pub tls_verified: Option<bool>,
}

struct Target {
    https: bool,
    host: String,
    port: u16,
    authority: String,
    path: String,
}

fn parse_url(url: &str) -> Result<Target, ProbeError> {
    let invalid = |why: &str| ProbeError::Invalid(format!("`{url}`: {why}"));
    let uri: Uri = url.parse().map_err(|_| invalid("not a URL"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err(invalid("only http:// and https:// URLs are supported")),
    };
    let authority = uri.authority().ok_or_else(|| invalid("no host"))?;
    if authority.as_str().contains('@') {
        return Err(invalid("credentials in URLs are not supported; send an Authorization header instead"));
    }
    let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_string();
    if host.is_empty() {
        return Err(invalid("no host"));
    }
    let port = authority.port_u16().unwrap_or(if https { 443 } else { 80 });
    let path = uri.path_and_query().map(|p| p.as_str().to_string()).unwrap_or_else(|| "/".into());
    Ok(Target { https, host, port, authority: authority.as_str().to_string(), path })
}

impl Prober {
    /// The host and port a URL points at, for the grant check before any IO.
    pub fn http_target(url: &str) -> Result<(String, u16), ProbeError> {
        parse_url(url).map(|t| (t.host, t.port))
    }

    /// Make one request.
    pub async fn http_request(
        &self,
        request: &HttpRequest,
        limit: Duration,
        policy: &dyn AddressPolicy,
    ) -> Result<HttpReply, ProbeError> {
        let target = parse_url(&request.url)?;
        let method = Method::from_bytes(request.method.as_bytes())
            .map_err(|_| ProbeError::Invalid(format!("`{}` is not an HTTP method", request.method)))?;
        let mut builder = Request::builder()
            .method(method)
            .uri(target.path.as_str())
            .header(http::header::HOST, target.authority.as_str());
        builder = builder.header(http::header::USER_AGENT, concat!("vakt-agent/", env!("CARGO_PKG_VERSION")));
        for (name, value) in &request.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| ProbeError::Invalid(format!("`{name}` is not a header name")))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| ProbeError::Invalid(format!("the value of header `{name}` is not valid")))?;
            builder = builder.header(name, value);
        }
        let body = Full::new(Bytes::from(request.body.clone().unwrap_or_default()));
        let http_request = builder.body(body).map_err(|e| ProbeError::Invalid(e.to_string()))?;
        let body_limit = request.body_limit.min(MAX_BODY_EXCERPT);

        within(limit, async {
            let started = Instant::now();
            if target.https {
                let handshake = self.tls_handshake(&target.host, target.port, policy, &[b"http/1.1"]).await?;
                if let Err(why) = &handshake.verdict
                    && !request.insecure
                {
                    return Err(ProbeError::Failed(format!("certificate of {} did not verify: {why}", target.host)));
                }
                let verified = handshake.verdict.is_ok();
                let mut reply = exchange(handshake.stream, http_request, &request.want_headers, body_limit).await?;
                reply.address = handshake.addr;
                reply.connect = handshake.connect;
                reply.tls_verified = Some(verified);
                reply.total = started.elapsed();
                Ok(reply)
            } else {
                let connected = self.connect(&target.host, target.port, policy).await?;
                let mut reply = exchange(connected.stream, http_request, &request.want_headers, body_limit).await?;
                reply.address = connected.addr;
                reply.connect = connected.connect;
                reply.total = started.elapsed();
                Ok(reply)
            }
        })
        .await
    }
}

async fn exchange<S>(
    stream: S,
    request: Request<Full<Bytes>>,
    want_headers: &[String],
    body_limit: usize,
) -> Result<HttpReply, ProbeError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let failed = |what: &str, e: hyper::Error| ProbeError::Failed(format!("{what}: {e}"));
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.map_err(|e| failed("HTTP handshake", e))?;
    let driver = tokio::spawn(async move {
        let _ = connection.await;
    });
    let sent = Instant::now();
    let response = sender.send_request(request).await.map_err(|e| failed("HTTP request", e));
    let response = match response {
        Ok(response) => response,
        Err(e) => {
            driver.abort();
            return Err(e);
        }
    };
    let response_time = sent.elapsed();
    let status = response.status().as_u16();
    let headers = want_headers
        .iter()
        .filter_map(|name| {
            let lower = name.to_ascii_lowercase();
            response.headers().get(lower.as_str()).map(|v| (lower, String::from_utf8_lossy(v.as_bytes()).into_owned()))
        })
        .collect();
    let mut body = response.into_body();
    let mut kept: Vec<u8> = Vec::new();
    let mut truncated = false;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| failed("reading the response body", e))?;
        if let Ok(data) = frame.into_data() {
            let room = body_limit - kept.len();
            if data.len() > room {
                kept.extend_from_slice(&data[..room]);
                truncated = true;
                break;
            }
            kept.extend_from_slice(&data);
        }
    }
    driver.abort();
    Ok(HttpReply {
        address: std::net::SocketAddr::from(([0, 0, 0, 0], 0)),
        connect: Duration::ZERO,
        status,
        headers,
        body: String::from_utf8_lossy(&kept).into_owned(),
        body_truncated: truncated,
        response: response_time,
        total: Duration::ZERO,
        tls_verified: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_parsed_strictly() {
        let t = parse_url("https://example.com/health?x=1").unwrap();
        assert!(t.https && t.host == "example.com" && t.port == 443 && t.path == "/health?x=1");
        let t = parse_url("http://[::1]:8080").unwrap();
        assert!(!t.https && t.host == "::1" && t.port == 8080 && t.path == "/");
        for bad in ["ftp://x/", "example.com", "http://user:pw@example.com/", "not a url"] {
            assert!(matches!(parse_url(bad), Err(ProbeError::Invalid(_))), "{bad}");
        }
    }
}
