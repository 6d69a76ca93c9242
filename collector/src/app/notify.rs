//! The sender: delivers what the notification log holds, by webhook (generic JSON or
//! Slack-compatible) or e-mail over SMTP, with retries and backoff.
//!
//! Sends run concurrently (at most [`PARALLEL`]) with a timeout each, so a slow SMTP server
//! or a hanging webhook delays only its own messages; nothing here can block the engine,
//! which only ever writes rows.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::Request;
use hyper_util::rt::TokioIo;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::net::TcpStream;
use tokio::sync::{Notify, Semaphore, watch};

use crate::model::NotificationRow;
use crate::rules::policy::{Delivery, Policy, Smtp, SmtpTls};
use crate::store::Store;

/// Sends in flight at once.
pub const PARALLEL: usize = 16;
/// Attempts before a notification is given up (backoff 1 s doubling to 5 min: about 75 min).
pub const MAX_ATTEMPTS: i64 = 20;
/// A claimed notification whose sender vanished (crash) is claimed again after this.
const LEASE_MS: i64 = 120_000;
/// Webhook request timeout, connect to response.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(10);

/// Retry delay after `attempts` failed attempts.
pub fn backoff_ms(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    1_000i64.saturating_mul(1i64 << exp.min(20)).min(300_000)
}

/// Delivers notifications.
#[derive(Clone)]
pub struct Sender {
    store: Store,
    /// Replaced whole when the policy is reloaded.
    smtp: Arc<std::sync::RwLock<Option<Arc<Mailer>>>>,
    tls: Arc<rustls::ClientConfig>,
}

impl std::fmt::Debug for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sender").field("smtp", &self.mailer().is_some()).finish()
    }
}

/// The `[smtp]` side of a policy, ready to send.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    timeout: Duration,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer").field("from", &self.from.to_string()).finish_non_exhaustive()
    }
}

impl Mailer {
    /// The policy's mailer (`None` without `[smtp]`), or why it cannot be built.
    pub fn of(policy: &Policy) -> Result<Option<Mailer>, String> {
        let Some(s) = &policy.smtp else { return Ok(None) };
        let from: Mailbox = s.from.parse().map_err(|e| format!("`smtp.from` `{}`: {e}", s.from))?;
        Ok(Some(Mailer { transport: smtp_transport(s)?, from, timeout: s.timeout }))
    }
}

fn smtp_transport(s: &Smtp) -> Result<AsyncSmtpTransport<Tokio1Executor>, String> {
    let builder = match s.tls {
        SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host),
        SmtpTls::Starttls | SmtpTls::Tls => {
            let mut params = TlsParameters::builder(s.host.clone());
            if let Some(pem) = &s.ca_pem {
                let root = Certificate::from_pem(pem).map_err(|e| format!("smtp ca_file: {e}"))?;
                params = params.certificate_store(CertificateStore::None).add_root_certificate(root);
            }
            let params = params.build_rustls().map_err(|e| format!("smtp TLS: {e}"))?;
            let tls = if s.tls == SmtpTls::Starttls { Tls::Required(params) } else { Tls::Wrapper(params) };
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&s.host).tls(tls)
        }
    };
    let mut builder = builder.port(s.port).timeout(Some(s.timeout));
    if let (Some(user), Some(password)) = (&s.username, &s.password) {
        builder = builder.credentials(Credentials::new(user.clone(), password.clone()));
    }
    Ok(builder.build())
}

impl Sender {
    pub fn new(store: Store, policy: &Policy) -> Result<Sender, String> {
        let smtp = Mailer::of(policy)?.map(Arc::new);
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Sender { store, smtp: Arc::new(std::sync::RwLock::new(smtp)), tls: Arc::new(tls) })
    }

    /// Send with `mailer` from now on (a reloaded policy's `[smtp]`).
    pub fn set_mailer(&self, mailer: Option<Mailer>) {
        *self.smtp.write().unwrap_or_else(std::sync::PoisonError::into_inner) = mailer.map(Arc::new);
    }

    fn mailer(&self) -> Option<Arc<Mailer>> {
        self.smtp.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Run until `stop`: claim due notifications, send them, record the outcome.
    pub async fn run(self, wake: Arc<Notify>, mut stop: watch::Receiver<bool>) {
        let permits = Arc::new(Semaphore::new(PARALLEL));
        loop {
            let now = crate::now_ms();
            let free = i64::try_from(permits.available_permits()).unwrap_or(0);
            let claimed = if free > 0 {
                match self.store.claim_notifications(now, LEASE_MS, free).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::error!(error = %common::report(&e), "sender: could not claim notifications");
                        Vec::new()
                    }
                }
            } else {
                Vec::new()
            };
            for row in claimed {
                let Ok(permit) = permits.clone().acquire_owned().await else { return };
                let sender = self.clone();
                tokio::spawn(async move {
                    sender.deliver(row).await;
                    drop(permit);
                });
            }
            let next = self.store.next_notification_due().await.ok().flatten();
            let sleep = next.map_or(1_000, |due| (due - crate::now_ms()).clamp(5, 1_000));
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(Duration::from_millis(u64::try_from(sleep).unwrap_or(1_000))) => {}
                _ = stop.changed() => return,
            }
        }
    }

    async fn deliver(&self, row: NotificationRow) {
        let outcome = match serde_json::from_str::<Delivery>(&row.delivery) {
            Ok(Delivery::Email { to }) => self.email(&to, &row.subject, &row.body).await,
            Ok(Delivery::Webhook { url } | Delivery::Slack { url }) => self.webhook(&url, &row.payload).await,
            Err(e) => Err(format!("unreadable delivery: {e}")),
        };
        let now = crate::now_ms();
        let recorded = match outcome {
            Ok(()) => {
                tracing::info!(id = row.id, kind = %row.kind, to = %row.recipient, "notification sent");
                self.store.notification_sent(row.id, now).await
            }
            Err(error) => {
                let retry = (row.attempts < MAX_ATTEMPTS).then(|| now + backoff_ms(row.attempts));
                tracing::warn!(id = row.id, to = %row.recipient, attempts = row.attempts, error = %error, retry = retry.is_some(), "notification failed");
                self.store.notification_failed(row.id, &error, retry, now).await
            }
        };
        if let Err(e) = recorded {
            // The lease runs out and it is tried again: at least once.
            tracing::error!(id = row.id, error = %common::report(&e), "could not record a notification's outcome");
        }
    }

    /// Send one message now, without the notification log: for the self-monitor, whose pages
    /// must go out when the store (where the log lives) is what failed.
    pub async fn deliver_now(
        &self,
        delivery: &Delivery,
        subject: &str,
        body: &str,
        payload: &str,
    ) -> Result<(), String> {
        match delivery {
            Delivery::Email { to } => self.email(to, subject, body).await,
            Delivery::Webhook { url } | Delivery::Slack { url } => self.webhook(url, payload).await,
        }
    }

    async fn email(&self, to: &str, subject: &str, body: &str) -> Result<(), String> {
        let Some(mailer) = self.mailer() else {
            return Err("no [smtp] configured".into());
        };
        let Mailer { transport, from, timeout } = &*mailer;
        let message = message(from, to, subject, body)?;
        // lettre's timeout covers each command; bound the whole exchange too.
        match tokio::time::timeout(*timeout * 2, transport.send(message)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(format!("smtp: {}", common::report(&e))),
            Err(_) => Err(format!("smtp: no answer within {}s", (timeout.as_secs() * 2))),
        }
    }

    async fn webhook(&self, url: &str, payload: &str) -> Result<(), String> {
        match tokio::time::timeout(WEBHOOK_TIMEOUT, self.post(url, payload)).await {
            Ok(result) => result,
            Err(_) => Err(format!("webhook: no answer within {}s", WEBHOOK_TIMEOUT.as_secs())),
        }
    }

    async fn post(&self, url: &str, payload: &str) -> Result<(), String> {
        let uri: http::Uri = url.parse().map_err(|e| format!("webhook URL: {e}"))?;
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return Err("webhook URL must be http:// or https://".into()),
        };
        let host =
            uri.host().ok_or("webhook URL has no host")?.trim_start_matches('[').trim_end_matches(']').to_string();
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let authority = uri.authority().map(|a| a.as_str().to_string()).unwrap_or_else(|| host.clone());
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
        let tcp = TcpStream::connect((host.as_str(), port)).await.map_err(|e| format!("webhook connect: {e}"))?;
        let request = Request::post(path)
            .header(http::header::HOST, authority)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::USER_AGENT, concat!("vakt-collector/", env!("CARGO_PKG_VERSION")))
            .body(Full::new(bytes::Bytes::from(payload.to_string())))
            .map_err(|e| format!("webhook request: {e}"))?;
        let status = if https {
            let name =
                rustls::pki_types::ServerName::try_from(host.clone()).map_err(|e| format!("webhook host: {e}"))?;
            let tls = tokio_rustls::TlsConnector::from(self.tls.clone())
                .connect(name, tcp)
                .await
                .map_err(|e| format!("webhook TLS: {e}"))?;
            exchange(TokioIo::new(tls), request).await?
        } else {
            exchange(TokioIo::new(tcp), request).await?
        };
        if status.is_success() { Ok(()) } else { Err(format!("webhook answered HTTP {}", status.as_u16())) }
    }
}

async fn exchange<T>(io: T, request: Request<Full<bytes::Bytes>>) -> Result<http::StatusCode, String>
where
    T: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.map_err(|e| format!("webhook: {e}"))?;
    let conn = tokio::spawn(conn);
    let response = send.send_request(request).await.map_err(|e| format!("webhook: {e}"))?;
    let status = response.status();
    // Read (and drop) a bounded body so the connection closes cleanly.
    let _ = tokio::time::timeout(
        Duration::from_secs(2),
        http_body_util::Limited::new(response.into_body(), 64 * 1024).collect(),
    )
    .await;
    conn.abort();
    Ok(status)
}

/// One e-mail. The subject is made one line here too, whatever the caller did: a line break in a
/// header is a header of the sender's choosing (`Bcc:`), so it never reaches lettre.
fn message(from: &Mailbox, to: &str, subject: &str, body: &str) -> Result<Message, String> {
    let to: Mailbox = to.parse().map_err(|e| format!("address `{to}`: {e}"))?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(crate::rules::words::one_line(subject))
        .body(body.to_string())
        .map_err(|e| format!("building the message: {e}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_line_break_in_a_subject_adds_no_header() {
        let from: Mailbox = "vakt@example.se".parse().unwrap();
        let subject = "[Org] Investigating: db\r\nBcc: thief@example.net\r\n\r\nforged body\u{202E}";
        let message = message(&from, "ops@example.se", subject, "the body").unwrap();
        let text = String::from_utf8(message.formatted()).unwrap();
        let (headers, body) = text.split_once("\r\n\r\n").unwrap();
        assert!(!headers.lines().any(|l| l.to_ascii_lowercase().starts_with("bcc")), "{headers}");
        assert!(!text.contains('\u{202E}'), "{text}");
        assert_eq!(body.trim_end(), "the body");
        assert_eq!(message.envelope().to().len(), 1, "only the one recipient");
        // Unfolded, the forged header is only words inside the subject.
        let unfolded = headers.replace("\r\n ", " ");
        let subject_line = unfolded.lines().find(|l| l.starts_with("Subject:")).unwrap();
        assert!(subject_line.contains("db  Bcc: thief@example.net"), "{subject_line}");
    }
}
