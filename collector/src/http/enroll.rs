//! The agents' door for certificates (no login; the token or the current certificate is the
//! credential): `POST /api/v1/enroll` (a token and a CSR → a client certificate for the agent
//! id) and `POST /api/v1/enroll/renew` (the current certificate and a CSR for the same key →
//! a fresh certificate).
//!
//! Each source gets a few failed attempts per window ([`crate::auth::LoginLimiter`], counted
//! before anything is checked, taken back on success), and every refusal is counted in
//! [`crate::http::denials::Denials`] before the answer is written — never one audit row per
//! refusal, so guessing cannot fill the disk. The store audits each enrolment and renewal.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use protocol::AgentId;
use serde_json::json;

use crate::auth::ca::{Authority, Issued};
use crate::http::state::AppState;
use crate::incident::Ms;
use crate::store::audit::{Entry, Who, new_request_id};
use crate::store::enrollment::NewCertificate;

/// The largest body read: a CSR and a certificate, with room to spare.
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EnrollBody {
    token: String,
    agent: String,
    csr: String,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RenewBody {
    certificate: String,
    csr: String,
}

/// A refusal: counted (and in aggregate audited) before it is answered.
struct Refuse<'a> {
    state: &'a AppState,
    who: Who,
    action: &'static str,
    object: String,
    now: Ms,
}

impl Refuse<'_> {
    fn with(&self, status: StatusCode, reason: &str, message: &str) -> Response {
        let entry = Entry { action: self.action, object: &self.object, outcome: "refused", detail: reason };
        self.state.denials.record(&self.who, entry, self.now);
        let mut response = (status, Json(json!({ "error": message, "reason": reason }))).into_response();
        if let Ok(id) = HeaderValue::from_str(&self.who.request_id) {
            response.headers_mut().insert("x-request-id", id);
        }
        response
    }
}

/// The agent's certificate, what it needs to trust, and its message key (derived from the
/// enrolment's `salt`; sent only here, over the pinned HTTPS connection).
fn answer(authority: &Authority, agent: &AgentId, issued: &Issued, salt: &str, now: SystemTime) -> Response {
    let left = issued.not_after.duration_since(now).unwrap_or_default();
    let renew_after = now + left * 2 / 3;
    Json(json!({
        "agent": agent.as_str(),
        "certificate": issued.pem,
        "serial": issued.serial,
        "ca": authority.ca.pem(),
        "collector_key": authority.collector_key,
        "message_key": crate::auth::message_key(&authority.message_root, agent.as_str(), salt).to_hex(),
        "not_after": crate::rules::time::rfc3339(ms(issued.not_after)),
        "renew_after": crate::rules::time::rfc3339(ms(renew_after)),
    }))
    .into_response()
}

fn ms(at: SystemTime) -> Ms {
    at.duration_since(UNIX_EPOCH).map_or(0, |d| Ms::try_from(d.as_millis()).unwrap_or(Ms::MAX))
}

fn too_many(refuse: &Refuse<'_>, retry_after_ms: Ms) -> Response {
    let mut response =
        refuse.with(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many failed attempts; try later");
    let seconds = (retry_after_ms / 1000).max(1).to_string();
    if let Ok(value) = HeaderValue::from_str(&seconds) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

fn authority(state: &AppState) -> Option<Arc<Authority>> {
    state.authority.clone()
}

/// `POST /api/v1/enroll`: `{"token", "agent", "csr"}` → the agent's certificate.
pub async fn enroll(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    body: Bytes,
) -> Response {
    let now = crate::now_ms();
    let who =
        Who { name: "-".into(), role: "agent".into(), source: addr.ip().to_string(), request_id: new_request_id() };
    let mut refuse = Refuse { state: &state, who, action: "enrollment.redeem", object: "agent:?".into(), now };
    let Some(authority) = authority(&state) else {
        return refuse.with(StatusCode::SERVICE_UNAVAILABLE, "no_ca", "this collector does not enrol agents");
    };
    let attempt = match state.limiter.attempt_by_source("enroll", addr.ip(), now) {
        Ok(attempt) => attempt,
        Err(blocked) => return too_many(&refuse, blocked.retry_after_ms()),
    };
    let body: EnrollBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return refuse.with(StatusCode::BAD_REQUEST, "bad_request", &format!("bad JSON body: {e}")),
    };
    let agent = match AgentId::new(&body.agent) {
        Ok(a) => a,
        Err(e) => return refuse.with(StatusCode::BAD_REQUEST, "bad_agent_id", &format!("agent id: {e}")),
    };
    refuse.object = format!("agent:{agent}");
    refuse.who.name = format!("agent:{agent}");
    let Some((token_id, secret)) = crate::rules::enrollment::parse_token(body.token.trim()) else {
        return refuse.with(StatusCode::UNAUTHORIZED, "unknown_token", "the enrollment token is not valid");
    };
    let issued = match authority.ca.issue(&body.csr, &agent, SystemTime::now(), authority.lifetime) {
        Ok(issued) => issued,
        Err(e) => return refuse.with(StatusCode::BAD_REQUEST, "bad_csr", &e),
    };
    let cert = NewCertificate { serial: &issued.serial, not_after_ms: ms(issued.not_after) };
    let secret_hash = crate::auth::sha256_hex(secret);
    match state.store.redeem_enrollment(&refuse.who, (token_id, &secret_hash), agent.as_str(), &cert, now).await {
        Ok(Ok(salt)) => {
            state.limiter.succeeded(attempt);
            tracing::info!(agent = %agent, token = token_id, source = %addr.ip(), not_after = %crate::rules::time::rfc3339(cert.not_after_ms), "agent enrolled");
            answer(&authority, &agent, &issued, &salt, SystemTime::now())
        }
        Ok(Err(refusal)) => {
            let message = match refusal {
                crate::rules::enrollment::Refusal::Unknown => "the enrollment token is not valid".to_string(),
                other => format!("the enrollment token cannot be used: {}", other.as_str().replace('_', " ")),
            };
            refuse.with(StatusCode::UNAUTHORIZED, refusal.as_str(), &message)
        }
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}

/// `POST /api/v1/enroll/renew`: `{"certificate", "csr"}` (a CSR signed by the certificate's own
/// key) → a fresh certificate for the same agent and key.
pub async fn renew(State(state): State<AppState>, ConnectInfo(addr): ConnectInfo<SocketAddr>, body: Bytes) -> Response {
    let now = crate::now_ms();
    let who =
        Who { name: "-".into(), role: "agent".into(), source: addr.ip().to_string(), request_id: new_request_id() };
    let mut refuse = Refuse { state: &state, who, action: "agent.renew", object: "agent:?".into(), now };
    let Some(authority) = authority(&state) else {
        return refuse.with(StatusCode::SERVICE_UNAVAILABLE, "no_ca", "this collector does not enrol agents");
    };
    let attempt = match state.limiter.attempt_by_source("renew", addr.ip(), now) {
        Ok(attempt) => attempt,
        Err(blocked) => return too_many(&refuse, blocked.retry_after_ms()),
    };
    let body: RenewBody = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return refuse.with(StatusCode::BAD_REQUEST, "bad_request", &format!("bad JSON body: {e}")),
    };
    let (presented, issued) =
        match authority.ca.renew(&body.csr, &body.certificate, SystemTime::now(), authority.lifetime) {
            Ok(pair) => pair,
            Err(e) => return refuse.with(StatusCode::UNAUTHORIZED, "bad_certificate", &e),
        };
    let agent = presented.agent;
    refuse.object = format!("agent:{agent}");
    refuse.who.name = format!("agent:{agent}");
    let cert = NewCertificate { serial: &issued.serial, not_after_ms: ms(issued.not_after) };
    match state.store.renew_certificate(&refuse.who, agent.as_str(), &presented.serial, &cert, now).await {
        Ok(Ok(salt)) => {
            state.limiter.succeeded(attempt);
            tracing::info!(agent = %agent, not_after = %crate::rules::time::rfc3339(cert.not_after_ms), "agent certificate renewed");
            answer(&authority, &agent, &issued, &salt, SystemTime::now())
        }
        Ok(Err(refusal)) => refuse.with(
            StatusCode::UNAUTHORIZED,
            refusal.as_str(),
            &format!("renewal refused: {}", refusal.as_str().replace('_', " ")),
        ),
        Err(e) => crate::http::error::ApiError::from(e).into_response(),
    }
}
