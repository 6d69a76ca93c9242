//! The operator side: the web UI (`/ops`, server-rendered, forms work without JavaScript) and
//! the JSON API (`/api/v1`). [`ROUTES`] is the one list of operator routes: the router is
//! built from it, [`guard`] enforces each route's permission before any handler runs, the
//! OpenAPI document is generated from it, and the route × role test walks it. A route that
//! is not in the list cannot be reached.
//!
//! Callers are a browser session (cookie `vakt_session`: HttpOnly, SameSite=Strict, Secure
//! under TLS; forms and non-GET fetches carry the session's CSRF token) or an API token
//! (`Authorization: Bearer vakt_<id>_<secret>`; its scopes and its owner's role must both
//! allow the route). Every refusal is written to the audit trail; every change writes its own
//! record in its transaction (see `store::audit`), and a change refused by its handler is
//! recorded here.

use std::net::SocketAddr;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, MatchedPath, RawPathParams, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};

use crate::auth::{self, Perm, Role};
use crate::http::state::AppState;
use crate::store::audit::{Entry, Who};

mod api;
pub mod openapi;
pub mod ui;

/// The session cookie.
pub const SESSION_COOKIE: &str = "vakt_session";
/// Session lifetime (a working day).
pub const SESSION_MS: i64 = 12 * 3600 * 1000;
/// The largest request body an operator route reads.
pub const BODY_LIMIT: usize = 256 * 1024;

use crate::actions::change::Kind;

/// What serves a route. Each is an enum with one variant per handler, matched exhaustively by
/// its dispatcher: a route naming a handler that does not exist does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handler {
    /// JSON: one of [`Change`](crate::actions::change::Change)'s routes.
    ApiChange(Kind),
    /// A web form posting one of the changes; redirects back to the incident.
    UiChange(Kind),
    Api(api::Endpoint),
    Ui(ui::Page),
}

/// An operator route's method: the three the surface uses, so a misspelt one does not compile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Delete => "DELETE",
        }
    }

    pub fn method(self) -> Method {
        match self {
            Verb::Get => Method::GET,
            Verb::Post => Method::POST,
            Verb::Delete => Method::DELETE,
        }
    }

    fn filter(self) -> axum::routing::MethodFilter {
        match self {
            Verb::Get => axum::routing::MethodFilter::GET,
            Verb::Post => axum::routing::MethodFilter::POST,
            Verb::Delete => axum::routing::MethodFilter::DELETE,
        }
    }
}

impl std::fmt::Display for Verb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One operator route.
#[derive(Debug, Clone, Copy)]
pub struct Route {
    pub method: Verb,
    pub path: &'static str,
    pub perm: Perm,
    pub summary: &'static str,
    pub handler: Handler,
}

const fn r(method: Verb, path: &'static str, perm: Perm, summary: &'static str, handler: Handler) -> Route {
    Route { method, path, perm, summary, handler }
}

use crate::actions::change::Kind as K;
use Handler::{Api, ApiChange, Ui, UiChange};
use Perm::{Admin, Intake, Read, Triage};
use Verb::{Delete, Get, Post};
use api::Endpoint as E;
use ui::Page as P;

/// Every operator route, its permission and what serves it.
pub const ROUTES: &[Route] = &[
    r(
        Get,
        "/api/v1/me",
        Read,
        "Who the caller is: user, role, and the permissions of this session or token.",
        Api(E::Me),
    ),
    r(Get, "/api/v1/incidents", Read, "Incidents, newest first (`?state=open` (default) or `all`).", Api(E::Incidents)),
    r(Post, "/api/v1/incidents", Triage, "Open an incident by hand, with affected components.", ApiChange(K::Open)),
    r(
        Get,
        "/api/v1/incidents/{id}",
        Read,
        "One incident: alerts, timeline, notifications, public updates, actions, legal clocks.",
        Api(E::Incident),
    ),
    r(Post, "/api/v1/incidents/{id}/acknowledge", Triage, "Acknowledge: paging stops.", ApiChange(K::Acknowledge)),
    r(
        Post,
        "/api/v1/incidents/{id}/escalate",
        Triage,
        "Escalate: page the next escalation step now (withdraws an acknowledgement).",
        ApiChange(K::Escalate),
    ),
    r(Post, "/api/v1/incidents/{id}/resolve", Triage, "Resolve by hand.", ApiChange(K::Resolve)),
    r(Post, "/api/v1/incidents/{id}/reopen", Triage, "Reopen a resolved incident.", ApiChange(K::Reopen)),
    r(
        Post,
        "/api/v1/incidents/{id}/severity",
        Triage,
        "Triage: set the severity (critical pages).",
        ApiChange(K::Severity),
    ),
    r(Post, "/api/v1/incidents/{id}/assign", Triage, "Assign to a person.", ApiChange(K::Assign)),
    r(Post, "/api/v1/incidents/{id}/notes", Triage, "Add an internal note to the timeline.", ApiChange(K::Notes)),
    r(
        Post,
        "/api/v1/incidents/{id}/updates",
        Triage,
        "Publish a public update (the incident appears on the status page).",
        ApiChange(K::Updates),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/classify",
        Triage,
        "Classify; personal-data-breach and nis2-significant start legal clocks.",
        ApiChange(K::Classify),
    ),
    r(Post, "/api/v1/incidents/{id}/reports", Triage, "Record a regulatory report as filed.", ApiChange(K::Reports)),
    r(
        Post,
        "/api/v1/incidents/{id}/actions",
        Triage,
        "Add a postmortem action with owner and due date.",
        ApiChange(K::Actions),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/responders",
        Triage,
        "Page a responder from another team or a person into the incident.",
        ApiChange(K::Responders),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/postmortem",
        Triage,
        "Write or amend the postmortem (enters the deviation register).",
        ApiChange(K::Postmortem),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/breach",
        Triage,
        "Record a personal-data breach's details (GDPR Art. 33(3)).",
        ApiChange(K::Breach),
    ),
    r(
        Get,
        "/api/v1/incidents/{id}/drafts/{name}",
        Read,
        "Draft of a report: gdpr-art33, nis2-early-warning, nis2-notification, nis2-final (`?format=markdown` or json).",
        Api(E::Draft),
    ),
    r(
        Get,
        "/api/v1/deviations",
        Read,
        "The deviation register: incidents with a postmortem and their follow-up.",
        Api(E::Deviations),
    ),
    r(
        Get,
        "/api/v1/breaches",
        Read,
        "The breach register: every personal-data breach, reported or not.",
        Api(E::Breaches),
    ),
    r(
        Get,
        "/api/v1/reports/yearly",
        Read,
        "The yearly report (`?year=`): incidents by severity and month, MTTA, MTTR, uptime, reports filed, overdue actions.",
        Api(E::Yearly),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/communicate",
        Triage,
        "Tell the affected customers: by e-mail while few are affected, else (or with `public`) on the status page.",
        ApiChange(K::Communicate),
    ),
    r(
        Get,
        "/api/v1/incidents/{id}/customers",
        Triage,
        "The customers an incident affects, with their contacts.",
        Api(E::IncidentCustomers),
    ),
    r(
        Post,
        "/api/v1/incidents/{id}/customers",
        Triage,
        "Count a customer in or out of an incident.",
        ApiChange(K::Customers),
    ),
    r(Get, "/api/v1/customers", Triage, "Customers, their contacts and what they use.", Api(E::Customers)),
    r(
        Post,
        "/api/v1/customers",
        Admin,
        "Add a customer with contacts and the components and agents it uses.",
        Api(E::CustomerAdd),
    ),
    r(Get, "/api/v1/subscribers", Admin, "Status-page subscribers.", Api(E::Subscribers)),
    r(Post, "/api/v1/actions/{id}/done", Triage, "Mark a postmortem action done.", ApiChange(K::Done)),
    r(
        Post,
        "/api/v1/tickets",
        Intake,
        "Support-system intake: open an incident (source ticket).",
        ApiChange(K::Ticket),
    ),
    r(
        Get,
        "/api/v1/windows",
        Read,
        "Maintenance windows and silences made at runtime (ending in the last 90 days or later).",
        Api(E::Windows),
    ),
    r(
        Post,
        "/api/v1/windows",
        Triage,
        "Add a maintenance window (components go under maintenance on the status page) or a silence.",
        Api(E::WindowAdd),
    ),
    r(Delete, "/api/v1/windows/{id}", Triage, "End a window now.", Api(E::WindowCancel)),
    r(
        Get,
        "/api/v1/agents",
        Read,
        "Agents with their state and, when enrolled, their identity (enrolment, certificate end, version, revocation).",
        Api(E::Agents),
    ),
    r(
        Post,
        "/api/v1/agents/{name}/revoke",
        Admin,
        "Revoke an enrolled agent: its messages are refused within seconds; its certificates stop renewing.",
        Api(E::AgentRevoke),
    ),
    r(Get, "/api/v1/enrollments", Admin, "Enrollment tokens (never their secrets).", Api(E::Enrollments)),
    r(Get, "/api/v1/checks", Read, "The latest result of every check.", Api(E::Checks)),
    r(
        Get,
        "/api/v1/checks/history",
        Read,
        "One check's last results (`?agent=&check=&limit=` ≤ 500) with metrics.",
        Api(E::CheckHistory),
    ),
    r(Get, "/api/v1/audit", Admin, "Audit records after `?after=SEQ` (oldest first, `limit` ≤ 1000).", Api(E::Audit)),
    r(Get, "/api/v1/users", Admin, "Users and roles.", Api(E::Users)),
    r(Post, "/api/v1/users", Admin, "Add a user.", Api(E::UserAdd)),
    r(Post, "/api/v1/users/{name}", Admin, "Change a user's role or password, disable or enable.", Api(E::UserSet)),
    r(Get, "/api/v1/tokens", Admin, "API tokens (never their secrets).", Api(E::Tokens)),
    r(Post, "/api/v1/tokens", Admin, "Create a token; the response shows it once.", Api(E::TokenCreate)),
    r(Delete, "/api/v1/tokens/{id}", Admin, "Revoke a token.", Api(E::TokenRevoke)),
    r(Get, "/ops", Read, "Dashboard: open incidents, unhealthy checks, silent agents.", Ui(P::Dashboard)),
    r(Get, "/ops/incidents/{id}", Read, "Incident page.", Ui(P::Incident)),
    r(Post, "/ops/incidents", Triage, "Open an incident (form).", UiChange(K::Open)),
    r(Post, "/ops/incidents/{id}/acknowledge", Triage, "Acknowledge (form).", UiChange(K::Acknowledge)),
    r(Post, "/ops/incidents/{id}/escalate", Triage, "Escalate now (form).", UiChange(K::Escalate)),
    r(Post, "/ops/incidents/{id}/resolve", Triage, "Resolve (form).", UiChange(K::Resolve)),
    r(Post, "/ops/incidents/{id}/reopen", Triage, "Reopen (form).", UiChange(K::Reopen)),
    r(Post, "/ops/incidents/{id}/severity", Triage, "Set the severity (form).", UiChange(K::Severity)),
    r(Post, "/ops/incidents/{id}/assign", Triage, "Assign (form).", UiChange(K::Assign)),
    r(Post, "/ops/incidents/{id}/notes", Triage, "Internal note (form).", UiChange(K::Notes)),
    r(Post, "/ops/incidents/{id}/updates", Triage, "Public update (form).", UiChange(K::Updates)),
    r(Post, "/ops/incidents/{id}/classify", Triage, "Classify (form).", UiChange(K::Classify)),
    r(Post, "/ops/incidents/{id}/reports", Triage, "Report filed (form).", UiChange(K::Reports)),
    r(Post, "/ops/incidents/{id}/actions", Triage, "Postmortem action (form).", UiChange(K::Actions)),
    r(Post, "/ops/incidents/{id}/responders", Triage, "Add a responder (form).", UiChange(K::Responders)),
    r(Post, "/ops/incidents/{id}/postmortem", Triage, "Postmortem (form).", UiChange(K::Postmortem)),
    r(Post, "/ops/incidents/{id}/breach", Triage, "Breach details (form).", UiChange(K::Breach)),
    r(Get, "/ops/deviations", Read, "Deviation register.", Ui(P::Deviations)),
    r(Get, "/ops/breaches", Read, "Breach register.", Ui(P::Breaches)),
    r(Get, "/ops/reports/yearly", Read, "Yearly report with charts.", Ui(P::Yearly)),
    r(
        Post,
        "/ops/incidents/{id}/communicate",
        Triage,
        "Update to the affected customers (form).",
        UiChange(K::Communicate),
    ),
    r(Post, "/ops/incidents/{id}/customers", Triage, "Count a customer in or out (form).", UiChange(K::Customers)),
    r(Get, "/ops/customers", Triage, "Customers.", Ui(P::Customers)),
    r(Post, "/ops/customers", Admin, "Add a customer (form).", Ui(P::CustomerAdd)),
    r(Post, "/ops/actions/{id}/done", Triage, "Action done (form).", UiChange(K::Done)),
    r(Get, "/ops/agents", Read, "Agents and their checks' latest results.", Ui(P::Agents)),
    r(Post, "/ops/agents/{name}/revoke", Admin, "Revoke an enrolled agent (form).", Ui(P::AgentRevoke)),
    r(Get, "/ops/check", Read, "One check (`?agent=&check=`): recent results and metric charts.", Ui(P::Check)),
    r(Get, "/ops/windows", Read, "Maintenance windows and silences.", Ui(P::Windows)),
    r(Post, "/ops/windows", Triage, "Add a window (form).", Ui(P::WindowAdd)),
    r(Post, "/ops/windows/{id}/cancel", Triage, "End a window now (form).", Ui(P::WindowCancel)),
    r(Get, "/ops/audit", Admin, "Audit viewer with chain verification.", Ui(P::Audit)),
    r(Get, "/ops/users", Admin, "Users and tokens.", Ui(P::Users)),
    r(Post, "/ops/users", Admin, "Add a user (form).", Ui(P::UserAdd)),
    r(Post, "/ops/tokens", Admin, "Create a token (form; shown once).", Ui(P::TokenCreate)),
    r(Post, "/ops/tokens/{id}/revoke", Admin, "Revoke a token (form).", Ui(P::TokenRevoke)),
    r(Post, "/logout", Read, "End the session.", Ui(P::Logout)),
];

/// What is wrong with a route table: each entry's path has the shape its handler needs (JSON
/// handlers under `/api/v1/`, pages and forms under `/ops` or `/logout`), names only the path
/// parameters handlers read (`{id}`, `{name}`), changes only by POST, and appears once.
pub fn check_routes(routes: &[Route]) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for route in routes {
        let at = format!("{} {}", route.method, route.path);
        let api = route.path.starts_with("/api/v1/");
        let ops = route.path == "/ops" || route.path.starts_with("/ops/") || route.path == "/logout";
        match route.handler {
            Api(_) | ApiChange(_) if !api => wrong.push(format!("{at}: a JSON handler outside /api/v1/")),
            Ui(_) | UiChange(_) if !ops => wrong.push(format!("{at}: a page or form outside /ops")),
            _ => {}
        }
        if matches!(route.handler, ApiChange(_) | UiChange(_)) && route.method != Post {
            wrong.push(format!("{at}: a change is a POST"));
        }
        for segment in route.path.split('/').skip(1) {
            let placeholder = segment.starts_with('{') || segment.ends_with('}');
            if segment.is_empty() && route.path != "/" {
                wrong.push(format!("{at}: an empty path segment"));
            } else if placeholder && !matches!(segment, "{id}" | "{name}") {
                wrong.push(format!("{at}: path parameter {segment}: handlers read {{id}} and {{name}}"));
            } else if !placeholder
                && !segment.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
            {
                wrong.push(format!("{at}: path segment `{segment}`"));
            }
        }
        if route.summary.trim().is_empty() {
            wrong.push(format!("{at}: no summary (the OpenAPI document shows it)"));
        }
        if !seen.insert((route.method.as_str(), route.path)) {
            wrong.push(format!("{at}: listed twice"));
        }
    }
    wrong
}

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum Via {
    Session { id_hash: String, csrf: String },
    Token { id: i64, scopes: Vec<Perm> },
}

/// An authenticated caller, handed to handlers after the guard.
#[derive(Debug, Clone)]
pub struct Caller {
    pub who: Who,
    pub role: Role,
    pub via: Via,
}

impl Caller {
    pub fn may(&self, perm: Perm) -> bool {
        self.role.grants(perm)
            && match &self.via {
                Via::Session { .. } => perm != Perm::Intake || self.role >= Role::Technician,
                Via::Token { scopes, .. } => scopes.contains(&perm),
            }
    }

    pub fn csrf(&self) -> &str {
        match &self.via {
            Via::Session { csrf, .. } => csrf,
            Via::Token { .. } => "",
        }
    }
}

/// The request id: the client's `X-Request-Id` if it is sane, else a fresh one.
fn request_id(req: &Request) -> String {
    req.headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map_or_else(crate::store::audit::new_request_id, str::to_string)
}

fn source(req: &Request) -> String {
    req.extensions().get::<ConnectInfo<SocketAddr>>().map_or_else(|| "unknown".into(), |c| c.0.ip().to_string())
}

/// Who the request comes from, if anyone (token first, then session cookie).
async fn identify(
    state: &AppState,
    headers: &axum::http::HeaderMap,
    source: String,
    request_id: String,
    now: i64,
) -> Result<Option<Caller>, &'static str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let text = value.to_str().unwrap_or("");
        let Some((id, secret)) = text.strip_prefix("Bearer ").and_then(auth::parse_token) else {
            return Err("malformed bearer token");
        };
        let Ok(Some(token)) = state.store.token(id).await else { return Err("unknown token") };
        if !auth::constant_eq(&auth::sha256_hex(secret), &token.secret_hash) {
            return Err("wrong token secret");
        }
        if token.revoked_ms.is_some() {
            return Err("revoked token");
        }
        if token.expires_ms <= now {
            return Err("expired token");
        }
        let Ok(Some(owner)) = state.store.user(&token.user).await else { return Err("token owner missing") };
        if owner.disabled_ms.is_some() {
            return Err("token owner disabled");
        }
        let _ = state.store.touch_token(id, now).await;
        let who = Who { name: owner.name, role: owner.role.as_str().into(), source, request_id };
        return Ok(Some(Caller { who, role: owner.role, via: Via::Token { id, scopes: token.scopes } }));
    }
    let cookies = headers.get(header::COOKIE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let Some(id) = auth::cookie(cookies, SESSION_COOKIE) else { return Ok(None) };
    let id_hash = auth::sha256_hex(id);
    match state.store.session(&id_hash, now).await {
        Ok(Some(s)) => {
            let who = Who { name: s.user, role: s.role.as_str().into(), source, request_id };
            Ok(Some(Caller { who, role: s.role, via: Via::Session { id_hash, csrf: s.csrf } }))
        }
        // An unknown or expired cookie is the same as none (the login page replaces it).
        _ => Ok(None),
    }
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// A refusal: JSON for the API, a short page (or the login redirect) for the UI.
fn refusal(status: StatusCode, path: &str, reason: &str, request_id: &str) -> Response {
    let mut response = if is_api(path) {
        (status, axum::Json(serde_json::json!({ "error": reason, "request_id": request_id }))).into_response()
    } else {
        (status, axum::response::Html(ui::refusal_page(status, reason, request_id))).into_response()
    };
    if let Ok(v) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// The form field or header carrying the CSRF token, reading (and putting back) a body.
async fn csrf_of(req: Request) -> Result<(Request, Option<String>), Response> {
    if let Some(v) = req.headers().get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        let v = v.to_string();
        return Ok((req, Some(v)));
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Ok((req, None));
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, BODY_LIMIT)
        .await
        .map_err(|_| (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response())?;
    let token = form_urlencoded_field(&bytes, "csrf");
    Ok((Request::from_parts(parts, Body::from(bytes)), token))
}

fn form_urlencoded_field(body: &[u8], name: &str) -> Option<String> {
    serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == name).then_some(v))
}

/// A refused request: recorded in the audit trail, answered with its reason.
struct Denial<'a> {
    state: &'a AppState,
    action: &'a str,
    uri: &'a str,
    now: i64,
}

impl Denial<'_> {
    /// Counted for the audit trail at once (before the response, so a client that hangs up
    /// early is recorded too), written in aggregate by `denials`.
    async fn deny(&self, who: &Who, status: StatusCode, reason: &str) -> Response {
        let entry = Entry { action: self.action, object: self.uri, outcome: "denied", detail: reason };
        self.state.denials.record(who, entry, self.now);
        refusal(status, self.uri, reason, &who.request_id)
    }
}

/// The permission check in front of every operator route.
pub async fn guard(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let now = crate::now_ms();
    let path = req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_default();
    let uri = req.uri().path().to_string();
    let method = req.method().clone();
    let request_id = request_id(&req);
    let anonymous = Who { name: "-".into(), role: "-".into(), source: source(&req), request_id: request_id.clone() };
    let action = format!("{method} {path}");
    let denial = Denial { state: &state, action: &action, uri: &uri, now };
    let Some(route) = ROUTES.iter().find(|r| r.path == path && r.method.method() == method) else {
        return denial.deny(&anonymous, StatusCode::FORBIDDEN, "route without a permission").await;
    };
    let caller = match identify(&state, req.headers(), anonymous.source.clone(), request_id.clone(), now).await {
        Ok(Some(c)) => c,
        Ok(None) if !is_api(&uri) && method == Method::GET => {
            // The login flow, not a refusal: off to the login page and back.
            return Redirect::to(&format!("/login?next={}", urlencode(req.uri().path()))).into_response();
        }
        Ok(None) => return denial.deny(&anonymous, StatusCode::UNAUTHORIZED, "not signed in").await,
        Err(reason) => return denial.deny(&anonymous, StatusCode::UNAUTHORIZED, reason).await,
    };
    if !caller.may(route.perm) {
        let reason = format!("{} lacks permission {}", caller.who.role, route.perm.as_str());
        return denial.deny(&caller.who, StatusCode::FORBIDDEN, &reason).await;
    }
    let mut req = req;
    if method != Method::GET
        && let Via::Session { csrf, .. } = &caller.via
    {
        let (back, presented) = match csrf_of(req).await {
            Ok(x) => x,
            Err(response) => return response,
        };
        req = back;
        if !presented.is_some_and(|p| auth::constant_eq(&p, csrf)) {
            return denial.deny(&caller.who, StatusCode::FORBIDDEN, "missing or wrong CSRF token").await;
        }
    }
    let who = caller.who.clone();
    req.extensions_mut().insert(caller);
    let mut response = next.run(req).await;
    // Changes record themselves; a change the handler refused is recorded here.
    let status = response.status();
    if method != Method::GET && (status.is_client_error() || status.is_server_error()) {
        let outcome = if status.is_server_error() { "error" } else { "refused" };
        let detail = status.as_u16().to_string();
        let entry = Entry { action: &action, object: &uri, outcome, detail: &detail };
        state.denials.record(&who, entry, now);
    }
    if let Ok(v) = HeaderValue::from_str(&who.request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response
}

/// Percent-encode for a query value.
pub fn urlencode(text: &str) -> String {
    serde_urlencoded::to_string([("", text)]).map(|s| s.trim_start_matches('=').to_string()).unwrap_or_default()
}

/// The operator router: every route of [`ROUTES`] behind [`guard`], plus the login page and
/// the OpenAPI document (public).
pub fn router(state: AppState) -> Router<AppState> {
    let mut router = Router::new();
    for route in ROUTES {
        let handler = route.handler;
        let service = axum::routing::on(
            route.method.filter(),
            move |state: State<AppState>, params: RawPathParams, mut req: Request| async move {
                // The path's parameters as axum matched and percent-decoded them.
                let params = params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                req.extensions_mut().insert(PathParams(params));
                match handler {
                    ApiChange(kind) => api::change(state, kind, req).await,
                    Api(endpoint) => api::dispatch(state, endpoint, req).await,
                    UiChange(kind) => ui::change(state, kind, req).await,
                    Ui(page) => ui::dispatch(state, page, req).await,
                }
            },
        );
        router = router.route(route.path, service);
    }
    router
        .route_layer(axum::middleware::from_fn_with_state(state, guard))
        .route("/login", axum::routing::get(ui::login_page).post(ui::login))
        .route("/api/v1/openapi.json", axum::routing::get(openapi::serve))
}

/// Shared by the UI and API: the caller (the guard put it there).
fn caller(req: &Request) -> Option<Caller> {
    req.extensions().get::<Caller>().cloned()
}

/// The matched path's parameters (`{id}`, `{name}`), put in the request by the router.
#[derive(Debug, Clone)]
struct PathParams(Vec<(String, String)>);

/// A path parameter by name.
fn segment(req: &Request, name: &str) -> Option<String> {
    let PathParams(params) = req.extensions().get::<PathParams>()?;
    params.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
}

/// `{id}` of the matched path as a number.
fn path_id(req: &Request) -> Option<i64> {
    segment(req, "id")?.parse().ok()
}

/// The `{name}` segment of the matched path.
fn path_name(req: &Request) -> Option<String> {
    segment(req, "name")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_route_table_is_well_formed() {
        assert_eq!(check_routes(ROUTES), Vec::<String>::new());
    }

    #[test]
    fn a_table_with_bad_entries_is_refused_entry_by_entry() {
        let bad = [
            r(Get, "/ops/incidents/{incident}", Read, "Misspelt parameter.", Ui(P::Incident)),
            r(Get, "/api/v1/incidents/{id}/acknowledge", Triage, "A change by GET.", ApiChange(K::Acknowledge)),
            r(Post, "/ops/incidents/{id}/resolve", Triage, "A JSON handler on a page.", Api(E::Incident)),
            r(Get, "/api/v1/Incidents", Read, "Upper case.", Api(E::Incidents)),
            r(Get, "/api/v1/me", Read, "", Api(E::Me)),
            r(Get, "/api/v1/me", Read, "Twice.", Api(E::Me)),
        ];
        let wrong = check_routes(&bad);
        for expected in [
            "GET /ops/incidents/{incident}: path parameter {incident}",
            "GET /api/v1/incidents/{id}/acknowledge: a change is a POST",
            "POST /ops/incidents/{id}/resolve: a JSON handler outside /api/v1/",
            "GET /api/v1/Incidents: path segment `Incidents`",
            "GET /api/v1/me: no summary",
            "GET /api/v1/me: listed twice",
        ] {
            assert!(wrong.iter().any(|w| w.starts_with(expected)), "{expected}: {wrong:#?}");
        }
        assert_eq!(wrong.len(), 6, "{wrong:#?}");
    }
}
