//! The operator web UI: server-rendered HTML, plain forms (POST + CSRF field, then a redirect),
//! so everything works without JavaScript. A person sees only the controls their role may use.

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use maud::{Markup, html};
use serde::Deserialize;

use super::{BODY_LIMIT, Caller, SESSION_COOKIE, SESSION_MS, Via, caller, path_id};
use crate::actions::accounts::AccountError;
use crate::actions::change::{Body, Change, Kind, PUBLIC_STATES, Refused};
use crate::auth::{self, Perm};
use crate::http::error::ApiError;
use crate::http::html::{layout, svg, table, text};
use crate::http::state::AppState;
use crate::model::{IncidentRow, IncidentState};
use crate::rules::time::rfc3339;
use crate::store::audit::{Entry, Who};
use crate::store::reminders::{CLASSIFICATIONS, REPORTS};
use crate::store::{AlertRow, CheckStateRow, HistoryRow};

fn page(title: &str, caller: Option<&Caller>, body: Markup) -> String {
    let who = caller.map(|c| layout::SignedIn {
        name: &c.who.name,
        role: c.role.as_str(),
        csrf: c.csrf(),
        admin: c.may(Perm::Admin),
    });
    crate::http::html::document(layout::ops_page(title, who, body))
}

/// A refusal's message as a page body.
fn error_body(message: &str) -> Markup {
    html! { p.err role="alert" { (message) } }
}

/// What a change did, above the page it returns to.
fn notice(message: &str) -> Markup {
    html! { p.msg role="status" { (message) } }
}

pub fn refusal_page(status: StatusCode, reason: &str, request_id: &str) -> String {
    let body = html! {
        p.err role="alert" { (reason) }
        p { "Request id " code { (request_id) } " (recorded in the audit trail)." }
        p { a href="/login" { "Sign in" } }
    };
    page(status.canonical_reason().unwrap_or("Refused"), None, body)
}

/// Progressive enhancement: countdowns to legal deadlines tick without a reload.
pub const SCRIPT: &str = r#"(function(){document.documentElement.dataset.js='1';function tick(){var now=Date.now();document.querySelectorAll('time[data-due]').forEach(function(t){var ms=Date.parse(t.getAttribute('data-due'))-now;var a=Math.abs(ms),h=Math.floor(a/3600000),m=Math.floor(a%3600000/60000);t.textContent=(ms<0?'overdue by ':'in ')+h+' h '+m+' min';if(ms<0)t.className='overdue';});}tick();setInterval(tick,30000);})();"#;

fn countdown(due_ms: i64, now: i64) -> Markup {
    let ms = due_ms - now;
    let a = ms.abs();
    let text =
        format!("{}{} h {} min", if ms < 0 { "overdue by " } else { "in " }, a / 3_600_000, a % 3_600_000 / 60_000);
    let at = rfc3339(due_ms);
    html! { time datetime=(at) data-due=(at) class=[(ms < 0).then_some("overdue")] { (text) } }
}

fn html(body: String) -> Response {
    Html(body).into_response()
}

fn hidden_csrf(caller: &Caller) -> Markup {
    html! { input type="hidden" name="csrf" value=(caller.csrf()); }
}

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    error: Option<String>,
}

/// Only local paths are followed after login: `/`, then the characters of a path and query,
/// nothing else. Browsers drop tabs and line breaks from URLs, so `/\t/evil` becomes
/// `//evil`, another host; a backslash is a slash to some; and a line break in a `Location`
/// header fails the response after the session was made. So no control character, no
/// backslash, no `//` anywhere at the start, and at most 2,000 bytes.
pub(crate) fn safe_next(next: Option<&str>) -> String {
    next.filter(|n| {
        n.len() <= 2_000
            && n.starts_with('/')
            && !n.starts_with("//")
            && n.bytes().all(|b| b.is_ascii_alphanumeric() || b"/-._~%?=&+:@!$'()*,;".contains(&b))
    })
    .map_or_else(|| "/ops".to_string(), str::to_string)
}

pub async fn login_page(Query(q): Query<LoginQuery>) -> Response {
    let body = html! {
        @if let Some(e) = &q.error { p.err role="alert" { (e) } }
        form method="post" action="/login" {
            input type="hidden" name="next" value=(safe_next(q.next.as_deref()));
            p { label for="user" { "User name" } br; input id="user" name="user" autocomplete="username" required; }
            p {
                label for="password" { "Password" } br;
                input id="password" name="password" type="password" autocomplete="current-password" required;
            }
            p { button type="submit" { "Sign in" } }
        }
    };
    html(page("Sign in", None, body))
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    user: String,
    password: String,
    next: Option<String>,
}

/// A login POST from another site (login CSRF) is refused: its Origin must be this host.
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else { return true };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    origin.split_once("://").is_some_and(|(_, h)| h == host)
}

fn login_failed(next: &str, message: &str, status: StatusCode) -> Response {
    let target = format!("/login?next={}&error={}", super::urlencode(next), super::urlencode(message));
    let mut r = Redirect::to(&target).into_response();
    if status == StatusCode::TOO_MANY_REQUESTS {
        *r.status_mut() = StatusCode::SEE_OTHER;
    }
    r
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<LoginForm>,
) -> Response {
    let now = crate::now_ms();
    let next = safe_next(form.next.as_deref());
    let request_id = crate::store::audit::new_request_id();
    let user: String = form.user.trim().chars().take(64).collect();
    let who = Who { name: user.clone(), role: "-".into(), source: addr.ip().to_string(), request_id };
    let object = format!("user:{user}");
    // Counted, not written: a flood of failed logins is a few audit rows (see `denials`).
    let deny = |reason: &str| {
        let entry = Entry { action: "session.login", object: &object, outcome: "denied", detail: reason };
        state.denials.record(&who, entry, now);
    };
    if !same_origin(&headers) {
        deny("cross-site login form");
        return (StatusCode::FORBIDDEN, "cross-site login refused\n").into_response();
    }
    // A browser that logged in as this user before carries proof of it: it is not held up by
    // the delay strangers' guesses put on the account.
    let known_device = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, auth::DEVICE_COOKIE))
        .is_some_and(|token| auth::constant_eq(token, &auth::device_token(&state.device_secret[..], &user)));
    let attempt = match state.limiter.attempt(addr.ip(), &user, known_device, now) {
        Ok(attempt) => attempt,
        Err(blocked) => {
            let (reason, message) = match blocked {
                auth::Blocked::Source { .. } => {
                    ("too many failed logins from this address", "Too many failed attempts")
                }
                auth::Blocked::Account { .. } => {
                    ("too many failed logins for this account", "Too many failed attempts for this account")
                }
            };
            deny(reason);
            let seconds = blocked.retry_after_ms() / 1000 + 1;
            let wait = if seconds >= 120 { format!("{} min", seconds / 60 + 1) } else { format!("{seconds} s") };
            return login_failed(&next, &format!("{message}; try again in {wait}."), StatusCode::TOO_MANY_REQUESTS);
        }
    };
    let stored = match state.store.user(&user).await {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(error = %e, "store error at login");
            return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
        }
    };
    // A dummy hash is checked when the user does not exist, so timing tells nothing.
    let phc = stored.as_ref().filter(|u| u.disabled_ms.is_none()).map(|u| u.password.clone());
    let ok = match state.hashing.verify(form.password, phc).await {
        Ok(ok) => ok,
        Err(busy) => {
            // Not a failed guess: give the attempt back.
            state.limiter.succeeded(attempt);
            deny("password checks busy");
            let mut response = (StatusCode::TOO_MANY_REQUESTS, format!("{busy}\n")).into_response();
            response.headers_mut().insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
            return response;
        }
    };
    let Some(user_row) = stored.filter(|_| ok) else {
        deny("wrong user name or password");
        return login_failed(&next, "Wrong user name or password.", StatusCode::UNAUTHORIZED);
    };
    state.limiter.succeeded(attempt);
    // A new session id at every login; a cookie the browser still had is ended (fixation).
    let old = headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| auth::cookie(c, SESSION_COOKIE))
        .map(auth::sha256_hex);
    let id = auth::new_secret();
    let csrf = auth::new_secret();
    let who = Who { role: user_row.role.as_str().into(), ..who.clone() };
    if let Err(e) =
        state.store.create_session(&who, &auth::sha256_hex(&id), &csrf, old.as_deref(), now, now + SESSION_MS).await
    {
        tracing::error!(error = %e, "cannot start a session");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response();
    }
    let secure = if state.secure { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{secure}", SESSION_MS / 1000);
    let device = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/login; Max-Age=31536000{secure}",
        auth::DEVICE_COOKIE,
        auth::device_token(&state.device_secret[..], &user_row.name)
    );
    let mut response = Redirect::to(&next).into_response();
    for value in [cookie, device] {
        if let Ok(value) = header::HeaderValue::from_str(&value) {
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}

fn clear_cookie(state: &AppState) -> String {
    format!(
        "{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if state.secure { "; Secure" } else { "" }
    )
}

/// What serves a page or an admin form: one per route, so the route table cannot name a page
/// that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Dashboard,
    Incident,
    Audit,
    Deviations,
    Customers,
    Windows,
    Agents,
    Check,
    WindowAdd,
    WindowCancel,
    CustomerAdd,
    Breaches,
    Yearly,
    Users,
    UserAdd,
    TokenCreate,
    TokenRevoke,
    AgentRevoke,
    Logout,
}

/// GET pages and the admin forms.
pub async fn dispatch(State(state): State<AppState>, page_of: Page, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return Redirect::to("/login").into_response() };
    let now = crate::now_ms();
    let result = match page_of {
        Page::Dashboard => dashboard(&state, &caller).await,
        Page::Incident => incident_page(&state, &caller, path_id(&req).unwrap_or(0), query(&req, "msg"), now).await,
        Page::Audit => audit_page(&state, &caller).await,
        Page::Deviations => deviations_page(&state, &caller, now).await,
        Page::Customers => customers_page(&state, &caller, None).await,
        Page::Windows => windows_page(&state, &caller, None).await,
        Page::Agents => agents_page(&state, &caller).await,
        Page::Check => {
            let (agent, check) = (query(&req, "agent").unwrap_or_default(), query(&req, "check").unwrap_or_default());
            check_page(&state, &caller, &agent, &check).await
        }
        Page::WindowAdd => {
            let fields: Vec<(String, String)> = match form(req).await {
                Ok(f) => f,
                Err(m) => {
                    return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(&caller), error_body(&m))))
                        .into_response();
                }
            };
            let get = |k: &str| {
                fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).filter(|v| !v.is_empty())
            };
            // Components come comma-separated in one field.
            let body = super::api::WindowBody {
                kind: get("kind"),
                reason: get("reason"),
                components: get("components")
                    .map(|c| c.split(',').map(|c| c.trim().to_string()).filter(|c| !c.is_empty()).collect())
                    .unwrap_or_default(),
                agents: get("agents"),
                checks: get("checks"),
                start: get("start"),
                end: get("end"),
                csrf: None,
            };
            match super::api::add_window(&state, &caller, body).await {
                Ok(id) => windows_page(&state, &caller, Some(notice(&format!("Window #{id} added.")))).await,
                Err(e) => {
                    return (e.status(), html(page("Not done", Some(&caller), error_body(&e.message()))))
                        .into_response();
                }
            }
        }
        Page::WindowCancel => {
            let id = path_id(&req).unwrap_or(0);
            match super::api::cancel_window(&state, &caller, id).await {
                Ok(true) => return Redirect::to("/ops/windows").into_response(),
                Ok(false) => {
                    return (StatusCode::NOT_FOUND, html(page("No such window", Some(&caller), html! {})))
                        .into_response();
                }
                Err(e) => Err(e),
            }
        }
        Page::CustomerAdd => return customer_add(&state, &caller, req).await,
        Page::Breaches => breaches_page(&state, &caller).await,
        Page::Yearly => {
            let year = query(&req, "year").and_then(|y| y.parse().ok()).filter(|y| (2000..=2200).contains(y));
            yearly_page(&state, &caller, year.unwrap_or_else(super::api::current_year)).await
        }
        Page::Users => users_page(&state, &caller, None).await,
        Page::UserAdd => return user_add(&state, &caller, req).await,
        Page::TokenCreate => return token_create(&state, &caller, req).await,
        Page::TokenRevoke => {
            let id = path_id(&req).unwrap_or(0);
            match state.store.revoke_token(&caller.who, id, now).await {
                Ok(true) => return Redirect::to("/ops/users").into_response(),
                Ok(false) => {
                    return (StatusCode::NOT_FOUND, html(page("No such token", Some(&caller), html! {})))
                        .into_response();
                }
                Err(e) => Err(e),
            }
        }
        Page::AgentRevoke => {
            let agent = super::path_name(&req).unwrap_or_default();
            match state.store.revoke_agent(&caller.who, &agent, now).await {
                Ok(true) => return Redirect::to("/ops/agents").into_response(),
                Ok(false) => {
                    return (StatusCode::NOT_FOUND, html(page("No such enrolled agent", Some(&caller), html! {})))
                        .into_response();
                }
                Err(e) => Err(e),
            }
        }
        Page::Logout => {
            if let Via::Session { id_hash, .. } = &caller.via {
                let _ = state.store.end_session(&caller.who, id_hash, now).await;
            }
            return ([(header::SET_COOKIE, clear_cookie(&state))], Redirect::to("/login")).into_response();
        }
    };
    match result {
        Ok(body) => html(body),
        Err(e) => {
            tracing::error!(error = %e, "store error in the UI");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
    }
}

fn query(req: &Request, key: &str) -> Option<String> {
    serde_urlencoded::from_str::<Vec<(String, String)>>(req.uri().query().unwrap_or(""))
        .ok()?
        .into_iter()
        .find_map(|(k, v)| (k == key).then_some(v))
}

async fn form<T: serde::de::DeserializeOwned>(req: Request) -> Result<T, String> {
    let bytes: Bytes =
        axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|_| "request body too large".to_string())?;
    serde_urlencoded::from_bytes(&bytes).map_err(|e| format!("bad form: {e}"))
}

/// A form posting a change: apply, then back to the incident page with the outcome.
pub async fn change(State(state): State<AppState>, kind: Kind, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return Redirect::to("/login").into_response() };
    let id = path_id(&req).unwrap_or(0);
    // Form fields arrive as strings; components come as one comma-separated field.
    let fields: Vec<(String, String)> = match form(req).await {
        Ok(f) => f,
        Err(m) => {
            return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(&caller), error_body(&m)))).into_response();
        }
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    // A postmortem or breach form sends every field; an emptied field is kept as empty text.
    let keep = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let number = |k: &str| get(k).map(|v| v.trim().parse::<i64>().map_err(|_| format!("`{k}` must be a whole number")));
    let (subjects_approx, records_approx) =
        match (number("subjects_approx").transpose(), number("records_approx").transpose()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(m), _) | (_, Err(m)) => {
                return (StatusCode::BAD_REQUEST, html(page("Not done", Some(&caller), error_body(&m))))
                    .into_response();
            }
        };
    let body = Body {
        severity: get("severity"),
        assignee: get("assignee"),
        text: get("text"),
        status: get("status"),
        classification: get("classification"),
        aware_at: get("aware_at"),
        report: get("report"),
        reference: get("reference"),
        owner: get("owner"),
        due: get("due"),
        target: get("target"),
        summary: keep("summary"),
        cause: keep("cause"),
        impact: keep("impact"),
        lessons: keep("lessons"),
        follow_up: get("follow_up"),
        nature: keep("nature"),
        subject_categories: keep("subject_categories"),
        subjects_approx,
        record_categories: keep("record_categories"),
        records_approx,
        consequences: keep("consequences"),
        measures: keep("measures"),
        contact: keep("contact"),
        not_reported_reason: keep("not_reported_reason"),
        customer: get("customer"),
        included: get("included").map(|v| v != "0" && v != "false"),
        public: get("public").map(|v| matches!(v.as_str(), "1" | "on" | "true")),
        resolve: get("resolve").map(|v| matches!(v.as_str(), "1" | "on" | "true")),
        title: get("title"),
        components: get("components")
            .map(|c| c.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
        csrf: None,
    };
    let change = Change::from_body(kind, id, body);
    let outcome = match change {
        Ok(c) => c.apply(&state.store, &state.policy.current(), &caller.who, crate::now_ms()).await,
        Err(r) => Err(r),
    };
    match outcome {
        Ok(applied) => {
            state.changed();
            let target = match (kind, applied.id) {
                (Kind::Open, Some(new)) => new,
                (Kind::Done, _) => get("incident").and_then(|v| v.parse().ok()).unwrap_or(0),
                _ => id,
            };
            let to = if target > 0 { format!("/ops/incidents/{target}") } else { "/ops".into() };
            Redirect::to(&format!("{to}?msg={}", super::urlencode(&applied.message))).into_response()
        }
        Err(Refused::Store(e)) => {
            tracing::error!(error = %e, "store error in the UI");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n").into_response()
        }
        Err(Refused::Invalid(m) | Refused::Conflict(m)) => {
            let body = html! {
                p.err role="alert" { (m) }
                @if id > 0 { p { a href={ "/ops/incidents/" (id) } { "Back to #" (id) } } }
            };
            (StatusCode::BAD_REQUEST, html(page("Not done", Some(&caller), body))).into_response()
        }
    }
}

async fn dashboard(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let recent = state.store.incidents(false).await?;
    let (incidents, resolved): (Vec<_>, Vec<_>) = recent.into_iter().partition(|i| i.state != IncidentState::Resolved);
    // Resolved here while the status page still shows them: the public must hear the end.
    let still_public: Vec<_> = resolved.into_iter().filter(|i| i.disagreement().is_some()).collect();
    let checks = state.store.check_states().await?;
    let agents = state.store.agents().await?;
    let unhealthy: Vec<_> = checks.iter().filter(|c| c.status != "ok").collect();
    let silent: Vec<_> = agents.iter().filter(|a| !a.online).collect();
    let now = crate::now_ms();
    let refused = state.reload_stats.refused_because();
    let body = html! {
        @if let Some(why) = &refused {
            p role="alert" class="warning" {
                "The last reload of the configuration was refused; the collector runs on the policy from before it: "
                (why)
            }
        }
        h2 { "Open incidents (" (incidents.len()) ")" }
        @if incidents.is_empty() {
            p { "No open incidents." }
        } @else {
            (incident_table(&incidents, now))
        }
        @if !still_public.is_empty() {
            h2 { "Resolved here, still current on the status page (" (still_public.len()) ")" }
            (incident_table(&still_public, now))
        }
        h2 { "Unhealthy checks (" (unhealthy.len()) ")" }
        @if unhealthy.is_empty() {
            p { "Every check is ok." }
        } @else {
            (table("Unhealthy checks", &["Agent", "Check", "Status", "Summary"], html! {
                tbody {
                    @for CheckStateRow { agent, check, status, summary, .. } in unhealthy {
                        tr { td { (agent) } td { (check_link(agent, check)) } td { (check_status(status)) } td { (summary) } }
                    }
                }
            }))
        }
        h2 { "Silent agents (" (silent.len()) ")" }
        @if silent.is_empty() {
            p {
                @match agents.len() {
                    0 => "No agent has connected yet.",
                    1 => "The one agent is online.",
                    n => { "All " (n) " agents are online." }
                }
            }
        } @else {
            ul { @for a in silent { li { (a.agent) } } }
        }
        @if caller.may(Perm::Triage) {
            h2 { "Open an incident" }
            form method="post" action="/ops/incidents" {
                (hidden_csrf(caller))
                p { label for="title" { "Title" } br; input id="title" name="title" size="60" maxlength="200" required; }
                p {
                    label for="severity" { "Severity" } " "
                    select id="severity" name="severity" { option { "critical" } option selected { "major" } option { "minor" } }
                    " "
                    label for="components" { "Affected components (comma-separated)" } " "
                    input id="components" name="components";
                }
                p { button type="submit" { "Open incident" } }
            }
        }
    };
    Ok(page("Dashboard", Some(caller), body))
}

/// Open incidents as the dashboard lists them, with what the status page says of each.
fn incident_table(incidents: &[IncidentRow], now: i64) -> Markup {
    html! {
        (table("Incidents", &["#", "Title", "State", "Severity", "Status page", "Opened", "Assignee"], html! {
            tbody {
                @for i in incidents {
                    tr {
                        td { a href={ "/ops/incidents/" (i.id) } { "#" (i.id) } }
                        td { a href={ "/ops/incidents/" (i.id) } { (text(&i.title)) } }
                        td { (i.state) }
                        td class={ "sev-" (i.severity) } { (i.severity) }
                        td {
                            (i.public_status.as_deref().unwrap_or("—"))
                            @if i.disagreement().is_some() { " " strong.disagree { "(disagrees)" } }
                        }
                        td { (when(i.created_ms, now)) }
                        td { (text(i.assignee.as_deref().unwrap_or("—"))) }
                    }
                }
            }
        }))
    }
}

/// A moment for an operator: short and readable, in UTC, with the machine-readable form.
fn when(ms: i64, now: i64) -> Markup {
    html! { time datetime=(rfc3339(ms)) { (crate::rules::words::Lang::En.when(ms, now)) } }
}

/// A check's status in words and colour.
fn check_status(status: &str) -> Markup {
    html! { span class={ "st st-" (status) } { (status) } }
}

/// A link to a check's history.
fn check_link(agent: &str, check: &str) -> Markup {
    html! { a href={ "/ops/check?agent=" (super::urlencode(agent)) "&check=" (super::urlencode(check)) } { (check) } }
}

fn form_button(caller: &Caller, id: i64, route: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action={ "/ops/incidents/" (id) "/" (route) } {
            (hidden_csrf(caller))
            button type="submit" { (label) }
        }
        " "
    }
}

fn select(name: &str, label: &str, options: &[&str]) -> Markup {
    html! {
        label for=(name) { (label) } " "
        select id=(name) name=(name) { @for o in options { option value=(o) { (o) } } }
    }
}

async fn incident_page(
    state: &AppState,
    caller: &Caller,
    id: i64,
    msg: Option<String>,
    now: i64,
) -> Result<String, crate::store::StoreError> {
    let store = &state.store;
    let Some(i) = store.incident(id).await? else {
        return Ok(page("No such incident", Some(caller), html! { p { "There is no incident #" (id) "." } }));
    };
    let filed = store.filed_reports(id).await?;
    let clocks = crate::rules::reminders::clocks(&i.classification, i.aware_at_ms, &filed);
    let actions = store.actions(id).await?;
    let affected = store.affected_customers(id).await?;
    let postmortem = store.postmortem(id).await?;
    let breach = store.breaches(Some(id)).await?.into_iter().next();
    let alerts = store.alerts(id).await?;
    let timeline = store.timeline(id).await?;
    let triage = caller.may(Perm::Triage);
    let body = html! {
        @if let Some(m) = &msg { (notice(m)) }
        @if let Some(why) = i.disagreement() {
            p.err role="alert" id="disagreement" { (why) }
        }
        dl {
            dt { "State" } dd id="state" { (i.state) }
            dt { "Severity" } dd class={ "sev-" (i.severity) } { (i.severity) " (" (i.urgency) ")" }
            dt { "Source" } dd { (i.source) }
            dt { "Assignee" } dd { (text(i.assignee.as_deref().unwrap_or("—"))) }
            dt { "Classification" } dd { (i.classification) }
            dt { "Status page" } dd id="public" {
                @match &i.public_status {
                    Some(status) => { "shown as " strong { (status) } }
                    None => "not shown",
                }
            }
            dt { "Runbook" } dd { (i.runbook.as_deref().unwrap_or("—")) }
        }
        @if !clocks.is_empty() {
            h2 { "Regulatory deadlines" }
            ul { @for c in &clocks { li { (c.label) ": due " (when(c.due_ms, now)) " (" (countdown(c.due_ms, now)) ")" } } }
        }
        @if i.classification != "operational" { (drafts_links(id)) }
        @if triage {
            h2 { "Actions" }
            p {
                @if i.state == IncidentState::Triggered { (form_button(caller, id, "acknowledge", "Acknowledge")) }
                @if i.state == IncidentState::Resolved {
                    (form_button(caller, id, "reopen", "Reopen"))
                } @else {
                    (form_button(caller, id, "escalate", "Escalate now"))
                    (form_button(caller, id, "resolve", "Resolve"))
                }
            }
            (public_update_form(caller, id))
        }
        h2 { "Timeline" }
        (table("Timeline", &["When", "Who", "What", "Detail"], html! {
            tbody id="timeline" {
                @for e in &timeline {
                    tr { td { (when(e.ts_ms, now)) } td { (text(&e.actor)) } td { (e.kind) } td { (text(&e.text)) } }
                }
            }
        }))
        @if !alerts.is_empty() {
            h2 { "Alerts" }
            ul {
                @for AlertRow { agent, check, active } in alerts.iter().take(200) {
                    li { (agent) "/" (if check.is_empty() { "(host)" } else { check }) " — " (if *active { "active" } else { "cleared" }) }
                }
                @if alerts.len() > 200 { li { "… and " (alerts.len() - 200) " more" } }
            }
        }
        @if triage {
            (triage_forms(caller, id))
        }
        @if !actions.is_empty() {
            h2 { "Postmortem actions" }
            ul {
                @for a in &actions {
                    li {
                        "#" (a.id) " " (text(&a.text)) " — " (text(&a.owner)) " (due " (when(a.due_ms, now)) ") "
                        @if a.done_ms.is_some() {
                            "done"
                        } @else if triage {
                            form.inline method="post" action={ "/ops/actions/" (a.id) "/done" } {
                                (hidden_csrf(caller))
                                input type="hidden" name="incident" value=(id);
                                button type="submit" { "Mark done" }
                            }
                        } @else {
                            "open, due " (when(a.due_ms, now))
                        }
                    }
                }
            }
        }
        (customers_section(caller, &i, &affected, state.policy.current().public.direct_max))
        (postmortem_section(caller, id, postmortem.as_ref()))
        (breach_section(caller, id, breach.as_ref()))
    };
    Ok(page(&format!("#{} {}", i.id, i.title), Some(caller), body))
}

/// The public update form: what the status page says next. A "resolved" update resolves the
/// incident too unless unticked, so the page and the incident agree.
fn public_update_form(caller: &Caller, id: i64) -> Markup {
    html! {
        fieldset {
            legend { "Public update (shown on the status page)" }
            form method="post" action={ "/ops/incidents/" (id) "/updates" } {
                (hidden_csrf(caller)) (select("status", "Status", &PUBLIC_STATES)) br;
                label for="update-text" { "Message" } br;
                textarea id="update-text" name="text" rows="3" cols="70" required {} br;
                input type="checkbox" id="resolve" name="resolve" value="true" checked;
                " " label for="resolve" { "With “resolved”: resolve the incident too" } br;
                button type="submit" { "Publish update" }
            }
        }
    }
}

/// The other forms of an incident page (for those who may triage).
fn triage_forms(caller: &Caller, id: i64) -> Markup {
    let csrf = hidden_csrf(caller);
    let to = |route: &str| format!("/ops/incidents/{id}/{route}");
    html! {
        fieldset {
            legend { "Triage" }
            form method="post" action=(to("severity")) {
                (csrf) (select("severity", "Severity", &["critical", "major", "minor"]))
                button type="submit" { "Set severity" }
            }
            form method="post" action=(to("assign")) {
                (csrf) label for="assignee" { "Assign to" } " " input id="assignee" name="assignee" required;
                button type="submit" { "Assign" }
            }
        }
        fieldset {
            legend { "Escalate to other competence" }
            form method="post" action=(to("responders")) {
                (csrf) label for="target" { "Responder" } " "
                input id="target" name="target" placeholder="team:network, person:alice, oncall:db" required;
                button type="submit" { "Page responder" }
            }
        }
        fieldset {
            legend { "Internal note" }
            form method="post" action=(to("notes")) {
                (csrf) label for="note-text" { "Note" } br;
                textarea id="note-text" name="text" rows="2" cols="70" required {} br;
                button type="submit" { "Add note" }
            }
        }
        fieldset {
            legend { "Classification" }
            form method="post" action=(to("classify")) {
                (csrf) (select("classification", "Classification", CLASSIFICATIONS))
                label for="aware_at" { "Aware since (RFC 3339, default now)" } " " input id="aware_at" name="aware_at";
                button type="submit" { "Classify" }
            }
            form method="post" action=(to("reports")) {
                (csrf) (select("report", "Report", REPORTS))
                label for="reference" { "Reference" } " " input id="reference" name="reference";
                button type="submit" { "Record as filed" }
            }
        }
        fieldset {
            legend { "Postmortem action" }
            form method="post" action=(to("actions")) {
                (csrf) label for="action-text" { "Action" } " " input id="action-text" name="text" required; " "
                label for="owner" { "Owner" } " " input id="owner" name="owner" required; " "
                label for="due" { "Due" } " " input id="due" name="due" type="date" required;
                button type="submit" { "Add action" }
            }
        }
    }
}

async fn audit_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let verified = state.store.verify_audit().await;
    let records = state.store.audit_recent(500).await?;
    let now = crate::now_ms();
    let body = html! {
        @match &verified {
            Ok(v) => { p.msg role="status" {
                "Chain intact: " (v.records) " records (" (v.unkeyed) " from before the audit key), head " code { (v.head) } "." } }
            Err(e) => { p.err role="alert" { "Chain broken: " (e) } }
        }
        p { "Export: " code { "vakt-collector audit export" } " or " a href="/api/v1/audit?limit=1000" { "/api/v1/audit" } "." }
        (table("Audit records", &["#", "When", "Who", "Role", "Action", "Object", "Outcome", "Source", "Request", "Detail"], html! {
            tbody {
                @for r in &records {
                    tr {
                        td { (r.seq) } td { (when(r.ts_ms, now)) } td { (r.actor) } td { (r.role) } td { (r.action) }
                        td { (text(&r.object)) } td { (r.outcome) } td { (r.source) } td { code { (r.request_id) } } td { (text(&r.detail)) }
                    }
                }
            }
        }))
    };
    Ok(page("Audit trail", Some(caller), body))
}

async fn users_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<Markup>,
) -> Result<String, crate::store::StoreError> {
    let users = state.store.users().await?;
    let tokens = state.store.tokens(None).await?;
    let now = crate::now_ms();
    let csrf = hidden_csrf(caller);
    let body = html! {
        @if let Some(n) = notice { (n) }
        h2 { "Users" }
        (table("Users", &["Name", "Role", "State"], html! {
            tbody {
                @for u in &users {
                    tr { td { (u.name) } td { (u.role.as_str()) } td { (if u.disabled_ms.is_some() { "disabled" } else { "active" }) } }
                }
            }
        }))
        h2 { "Add a user" }
        form method="post" action="/ops/users" {
            (csrf)
            label for="new-name" { "Name" } " " input id="new-name" name="name" required; " "
            (select("role", "Role", &["viewer", "technician", "admin"]))
            label for="new-password" { "Password (≥ 12 characters)" } " "
            input id="new-password" name="password" type="password" autocomplete="new-password" required;
            button type="submit" { "Add user" }
        }
        h2 { "API tokens" }
        (table("Tokens", &["#", "Owner", "Name", "Scopes", "Expires", "Last used", "State"], html! {
            tbody {
                @for t in &tokens {
                    tr {
                        td { (t.id) } td { (t.user) } td { (t.name) } td { (auth::scopes_text(&t.scopes)) }
                        td { (when(t.expires_ms, now)) }
                        td { (t.last_used_ms.map_or_else(|| "never".to_string(), rfc3339)) }
                        td {
                            @if t.revoked_ms.is_some() {
                                "revoked"
                            } @else if t.expires_ms <= now {
                                "expired"
                            } @else {
                                "active "
                                form.inline method="post" action={ "/ops/tokens/" (t.id) "/revoke" } {
                                    (csrf) button type="submit" { "Revoke" }
                                }
                            }
                        }
                    }
                }
            }
        }))
        h2 { "Create a token" }
        form method="post" action="/ops/tokens" {
            (csrf)
            label for="tok-user" { "Owner" } " " input id="tok-user" name="user" value=(caller.who.name) required;
            label for="tok-name" { "Name" } " " input id="tok-name" name="name" required;
            label for="tok-scopes" { "Scopes" } " " input id="tok-scopes" name="scopes" value="read";
            label for="tok-expires" { "Expires after" } " " input id="tok-expires" name="expires" value="90d";
            button type="submit" { "Create token" }
        }
    };
    Ok(page("Users and tokens", Some(caller), body))
}

#[derive(Debug, Deserialize)]
struct UserForm {
    name: String,
    role: String,
    password: String,
    #[allow(dead_code)]
    csrf: Option<String>,
}

async fn user_add(state: &AppState, caller: &Caller, req: Request) -> Response {
    let f: UserForm = match form(req).await {
        Ok(f) => f,
        Err(m) => {
            return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), error_body(&m)))).into_response();
        }
    };
    let checked = f.role.parse::<auth::Role>().and_then(|role| {
        auth::check_user_name(&f.name).and_then(|()| auth::check_password(&f.password)).map(|()| role)
    });
    let outcome = match checked {
        Ok(role) => {
            crate::actions::accounts::add_user_bounded(
                &state.store,
                &state.hashing,
                &caller.who,
                &f.name,
                role,
                f.password,
            )
            .await
        }
        Err(m) => Err(AccountError::Invalid(m)),
    };
    let notice = match outcome {
        Ok(true) => notice(&format!("User {} added.", f.name)),
        Ok(false) => {
            return (
                StatusCode::CONFLICT,
                html(page("Not done", Some(caller), error_body(&format!("User {} exists.", f.name)))),
            )
                .into_response();
        }
        Err(e) => {
            let e = ApiError::from(e);
            return (e.status(), html(page("Not done", Some(caller), error_body(&e.message())))).into_response();
        }
    };
    match users_page(state, caller, Some(notice)).await {
        Ok(p) => html(p),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

async fn token_create(state: &AppState, caller: &Caller, req: Request) -> Response {
    let body: super::api::TokenBody = match form(req).await {
        Ok(f) => f,
        Err(m) => {
            return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), error_body(&m)))).into_response();
        }
    };
    match super::api::create_token(state, caller, body).await {
        Ok((id, token)) => {
            let notice = html! {
                p.msg role="status" {
                    "Token #" (id) " created. Copy it now; it is not shown again:" br; code id="new-token" { (token) }
                }
            };
            match users_page(state, caller, Some(notice)).await {
                Ok(p) => ([(header::CACHE_CONTROL, "no-store")], html(p)).into_response(),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Err(e) => {
            let e = ApiError::from(e);
            (e.status(), html(page("Not done", Some(caller), error_body(&e.message())))).into_response()
        }
    }
}

fn textarea(name: &str, label: &str, value: &str, editable: bool) -> Markup {
    html! {
        @if editable {
            p { label for=(name) { (label) } br; textarea id=(name) name=(name) rows="3" cols="80" { (value) } }
        } @else {
            h3 { (label) }
            p { (if value.is_empty() { "—" } else { value }) }
        }
    }
}

fn postmortem_section(caller: &Caller, id: i64, p: Option<&crate::model::PostmortemRow>) -> Markup {
    let edit = caller.may(Perm::Triage);
    let get = |f: fn(&crate::model::PostmortemRow) -> &str| p.map_or("", f);
    let current = p.map_or("open", |p| p.follow_up.as_str());
    let fields = html! {
        (textarea("summary", "What happened", get(|p| &p.summary), edit))
        (textarea("cause", "Cause", get(|p| &p.cause), edit))
        (textarea("impact", "Impact", get(|p| &p.impact), edit))
        (textarea("lessons", "Lessons learned", get(|p| &p.lessons), edit))
    };
    html! {
        h2 { "Postmortem" }
        @if p.is_none() && !edit {
            p { "No postmortem yet." }
        } @else {
            @if let Some(p) = p {
                p {
                    "In the deviation register; follow-up " strong { (p.follow_up) } ", last edited by " (p.updated_by)
                    " at " (when(p.updated_ms, crate::now_ms())) "."
                }
            }
            @if edit {
                form method="post" action={ "/ops/incidents/" (id) "/postmortem" } {
                    (hidden_csrf(caller))
                    (fields)
                    p {
                        label for="follow_up" { "Follow-up" } " "
                        select id="follow_up" name="follow_up" {
                            @for o in crate::store::deviations::FOLLOW_UP { option value=(o) selected[o == current] { (o) } }
                        }
                        " " button type="submit" { "Save postmortem" }
                    }
                }
            } @else {
                (fields)
            }
        }
    }
}

fn breach_section(caller: &Caller, id: i64, breach: Option<&crate::model::BreachRow>) -> Markup {
    let Some(br) = breach else { return html! {} };
    let edit = caller.may(Perm::Triage);
    let reported = br.reported_ms.map_or_else(
        || "not reported".to_string(),
        |at| format!("reported {} ({})", rfc3339(at), br.reference.as_deref().unwrap_or("no reference")),
    );
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    let fields = html! {
        (textarea("nature", "Nature of the breach", &br.nature, edit))
        (textarea("subject_categories", "Categories of data subjects", &br.subject_categories, edit))
        (textarea("record_categories", "Categories of personal data", &br.record_categories, edit))
        (textarea("consequences", "Likely consequences", &br.consequences, edit))
        (textarea("measures", "Measures taken or proposed", &br.measures, edit))
        (textarea("contact", "Contact point", &br.contact, edit))
        (textarea("not_reported_reason", "If not reported: why", &br.not_reported_reason, edit))
    };
    html! {
        h2 { "Personal-data breach (GDPR Art. 33)" }
        p { (reported) "." }
        @if edit {
            form method="post" action={ "/ops/incidents/" (id) "/breach" } {
                (hidden_csrf(caller))
                (fields)
                p {
                    label for="subjects_approx" { "Data subjects (approx.)" } " "
                    input id="subjects_approx" name="subjects_approx" inputmode="numeric" value=(num(br.subjects_approx));
                    label for="records_approx" { "Records (approx.)" } " "
                    input id="records_approx" name="records_approx" inputmode="numeric" value=(num(br.records_approx));
                    button type="submit" { "Save breach details" }
                }
            }
        } @else {
            (fields)
            p { "Data subjects ≈ " (num(br.subjects_approx)) "; records ≈ " (num(br.records_approx)) }
        }
    }
}

fn drafts_links(id: i64) -> Markup {
    html! {
        h2 { "Report drafts" }
        ul {
            @for r in crate::rules::compliance::DRAFTS {
                li {
                    (r) ": "
                    a href={ "/api/v1/incidents/" (id) "/drafts/" (r) "?format=markdown" } { "Markdown" }
                    " · "
                    a href={ "/api/v1/incidents/" (id) "/drafts/" (r) } { "JSON" }
                }
            }
        }
    }
}

/// A register's first cell: the incident's number and title, linking to its page.
fn incident_cell(id: i64, title: &str) -> Markup {
    html! { td { a href={ "/ops/incidents/" (id) } { "#" (id) " " (text(title)) } } }
}

async fn deviations_page(state: &AppState, caller: &Caller, now: i64) -> Result<String, crate::store::StoreError> {
    let rows = state.store.deviations(now).await?;
    let body = html! {
        p { "Every incident with a postmortem, with its follow-up and its actions." }
        (table("Deviations", &["Incident", "Severity", "Classification", "Opened", "Cause", "Follow-up", "Open actions", "Overdue"], html! {
            tbody {
                @for d in &rows {
                    tr {
                        (incident_cell(d.incident_id, &d.title))
                        td { (d.severity) } td { (d.classification) } td { (when(d.opened_ms, now)) } td { (text(&d.cause)) }
                        td { (text(&d.follow_up)) } td { (d.actions_open) }
                        td class=[(d.actions_overdue > 0).then_some("overdue")] { (d.actions_overdue) }
                    }
                }
            }
        }))
    };
    Ok(page("Deviation register", Some(caller), body))
}

async fn breaches_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let rows = state.store.breaches(None).await?;
    let reported = |r: &crate::model::BreachRow| {
        r.reported_ms.map_or_else(
            || {
                if r.not_reported_reason.is_empty() {
                    "no".to_string()
                } else {
                    format!("no: {}", r.not_reported_reason)
                }
            },
            |at| format!("{} {}", rfc3339(at), r.reference.clone().unwrap_or_default()),
        )
    };
    let approx = |v: Option<i64>| v.map_or_else(|| "?".to_string(), |n| n.to_string());
    let body = html! {
        p { "Every personal-data breach, reported or not (GDPR Art. 33(5))." }
        (table("Breaches", &["Incident", "Aware since", "Nature", "Data subjects", "Records", "Consequences", "Measures", "Reported"], html! {
            tbody {
                @for r in &rows {
                    tr {
                        (incident_cell(r.incident_id, &r.title))
                        td { (r.aware_at_ms.map(rfc3339).unwrap_or_default()) }
                        td { (text(&r.nature)) }
                        td { (text(&r.subject_categories)) " ≈ " (approx(r.subjects_approx)) }
                        td { (text(&r.record_categories)) " ≈ " (approx(r.records_approx)) }
                        td { (text(&r.consequences)) } td { (text(&r.measures)) } td { (reported(r)) }
                    }
                }
            }
        }))
    };
    Ok(page("Breach register", Some(caller), body))
}

async fn yearly_page(state: &AppState, caller: &Caller, year: i32) -> Result<String, crate::store::StoreError> {
    let doc = super::api::yearly(state, year).await?;
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let sev: Vec<(String, f64)> = ["critical", "major", "minor"]
        .iter()
        .map(|s| ((*s).to_string(), n(&doc["incidents"]["by_severity"][*s])))
        .collect();
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let months: Vec<(String, f64)> =
        MONTHS.iter().enumerate().map(|(i, m)| ((*m).to_string(), n(&doc["incidents"]["by_month"][i]))).collect();
    let minutes = |v: &serde_json::Value| v.as_i64().map_or_else(|| "—".to_string(), |m| format!("{m} min"));
    let uptime: Vec<(String, f64)> = doc["uptime_percent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| Some((u["component"].as_str()?.to_string(), u["uptime"].as_f64()?)))
        .collect();
    let (ack, res) = (&doc["time_to_acknowledge"], &doc["time_to_resolve"]);
    let body = html! {
        p {
            a href={ "/ops/reports/yearly?year=" (year - 1) } { (year - 1) } " · "
            a href={ "/ops/reports/yearly?year=" (year + 1) } { (year + 1) } " · "
            a href={ "/api/v1/reports/yearly?year=" (year) } { "JSON" }
        }
        h2 { "Incidents: " (doc["incidents"]["total"]) }
        (svg::bar_chart("Incidents by severity", &sev, ""))
        (svg::bar_chart("Incidents by month", &months, ""))
        h2 { "Response" }
        p {
            "Time to acknowledge: median " (minutes(&ack["median_min"])) ", mean " (minutes(&ack["mean_min"]))
            " (" (ack["count"]) " acknowledged). Time to resolve: median " (minutes(&res["median_min"]))
            ", mean " (minutes(&res["mean_min"])) " (" (res["count"]) " resolved)."
        }
        h2 { "Uptime" }
        @if uptime.is_empty() {
            p { "No uptime recorded for this year." }
        } @else {
            (svg::bar_chart("Uptime per component", &uptime, " %"))
        }
        h2 { "Reports filed" }
        ul {
            @for r in doc["reports_filed"].as_array().into_iter().flatten() {
                li { (r["report"].as_str().unwrap_or("")) ": " (r["count"]) }
            }
        }
        h2 { "Overdue postmortem actions" }
        p { (doc["overdue_actions"]) }
    };
    Ok(page(&format!("Yearly report {year}"), Some(caller), body))
}

fn customers_section(
    caller: &Caller,
    i: &crate::model::IncidentRow,
    affected: &[crate::store::customers::CustomerRow],
    direct_max: usize,
) -> Markup {
    let id = i.id;
    let mode = match i.communication.as_deref() {
        Some("direct") => "communicated directly by e-mail".to_string(),
        Some("public") => "communicated on the status page".to_string(),
        _ if affected.len() > direct_max => {
            format!("{} affected: updates go on the status page (direct up to {direct_max})", affected.len())
        }
        _ => format!("updates go directly by e-mail (up to {direct_max} customers)"),
    };
    let csrf = hidden_csrf(caller);
    html! {
        h2 { "Affected customers" }
        @if affected.is_empty() {
            p { "No customer is linked to this incident's components or agents." }
        } @else {
            ul id="customers" {
                @for c in affected { li { (text(&c.name)) " (" (c.lang) ") — " (c.contacts.join(", ")) } }
            }
        }
        p { (mode) }
        @if caller.may(Perm::Triage) {
            form method="post" action={ "/ops/incidents/" (id) "/communicate" } {
                (csrf) (select("status", "Status", &PUBLIC_STATES)) br;
                label for="customer-text" { "Message to the affected customers" } br;
                textarea id="customer-text" name="text" rows="3" cols="70" required {} br;
                label { input type="checkbox" name="public" value="1"; " Publish on the status page instead" } " "
                button type="submit" { "Send update" }
            }
            form method="post" action={ "/ops/incidents/" (id) "/customers" } {
                (csrf) label for="customer" { "Customer" } " " input id="customer" name="customer" required;
                select name="included" aria-label="Count in or out" {
                    option value="1" { "count in" } option value="0" { "count out" }
                }
                button type="submit" { "Change" }
            }
        }
    }
}

async fn customers_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<Markup>,
) -> Result<String, crate::store::StoreError> {
    let customers = state.store.customers().await?;
    let body = html! {
        @if let Some(n) = notice { (n) }
        (table("Customers", &["Customer", "Language", "Contacts", "Uses"], html! {
            tbody {
                @for c in &customers {
                    @let uses: Vec<String> = c.uses.iter().map(|(k, n)| format!("{k}:{n}")).collect();
                    tr { td { (text(&c.name)) } td { (c.lang) } td { (c.contacts.join(", ")) } td { (uses.join(", ")) } }
                }
            }
        }))
        @if caller.may(Perm::Admin) {
            h2 { "Add a customer" }
            form method="post" action="/ops/customers" {
                (hidden_csrf(caller))
                p { label for="c-name" { "Name" } " " input id="c-name" name="name" required; " " (select("lang", "Language", &["sv", "en"])) }
                p {
                    label for="c-contacts" { "Contact e-mail addresses (comma-separated)" } br;
                    input id="c-contacts" name="contacts" size="60" required;
                }
                p {
                    label for="c-components" { "Components used (comma-separated)" } " " input id="c-components" name="components";
                    label for="c-agents" { "Agents used" } " " input id="c-agents" name="agents";
                }
                p { button type="submit" { "Add customer" } }
            }
        }
    };
    Ok(page("Customers", Some(caller), body))
}

async fn customer_add(state: &AppState, caller: &Caller, req: Request) -> Response {
    let fields: Vec<(String, String)> = match form(req).await {
        Ok(f) => f,
        Err(m) => {
            return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), error_body(&m)))).into_response();
        }
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
    let list = |k: &str| get(k).split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect::<Vec<_>>();
    let outcome = super::api::add_customer(
        state,
        caller,
        &get("name"),
        &get("lang"),
        &list("contacts"),
        &list("components"),
        &list("agents"),
    )
    .await;
    match outcome {
        Ok(_) => match customers_page(state, caller, Some(notice(&format!("Customer {} added.", get("name"))))).await {
            Ok(p) => html(p),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Err(e) => (e.status(), html(page("Not done", Some(caller), error_body(&e.message())))).into_response(),
    }
}

async fn windows_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<Markup>,
) -> Result<String, crate::store::StoreError> {
    let now = crate::now_ms();
    let windows = state.store.windows(now - crate::http::public::status::HISTORY_MS).await?;
    let triage = caller.may(Perm::Triage);
    let body = html! {
        @if let Some(n) = notice { (n) }
        p { "Windows in collector.toml are not listed here; these are the ones made here or through the API." }
        (table("Windows", &["#", "Kind", "Reason", "Components", "Mutes", "From", "Until", "By", "State"], html! {
            tbody {
                @for w in &windows {
                    tr {
                        td { (w.id) } td { (w.kind) } td { (w.reason) } td { (w.components.join(", ")) }
                        td { (w.agents.as_deref().unwrap_or("—")) " / " (w.checks.as_deref().unwrap_or("—")) }
                        td { (when(w.start, now)) } td { (when(w.end, now)) } td { (w.created_by) }
                        td {
                            @if w.end <= now {
                                "ended"
                            } @else {
                                (if w.start <= now { "active" } else { "scheduled" })
                                @if triage {
                                    " "
                                    form.inline method="post" action={ "/ops/windows/" (w.id) "/cancel" } {
                                        (hidden_csrf(caller)) button type="submit" { "End now" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }))
        @if triage {
            h2 { "Add a window" }
            form method="post" action="/ops/windows" {
                (hidden_csrf(caller))
                p {
                    (select("kind", "Kind", &["maintenance", "silence"]))
                    label for="w-reason" { "Reason" } " " input id="w-reason" name="reason" size="40" required;
                }
                p {
                    label for="w-components" { "Components (comma-separated)" } " " input id="w-components" name="components";
                    label for="w-agents" { "Agents (glob)" } " " input id="w-agents" name="agents";
                    label for="w-checks" { "Checks (glob)" } " " input id="w-checks" name="checks";
                }
                p {
                    label for="w-start" { "Start (RFC 3339)" } " " input id="w-start" name="start" value=(rfc3339(now)) required;
                    label for="w-end" { "End" } " " input id="w-end" name="end" value=(rfc3339(now + 3_600_000)) required;
                }
                p { button type="submit" { "Add window" } }
            }
        }
    };
    Ok(page("Maintenance windows and silences", Some(caller), body))
}

async fn agents_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let agents = state.store.agents().await?;
    let checks = state.store.check_states().await?;
    let enrolled = state.store.enrolled_agents().await?;
    let admin = caller.may(Perm::Admin);
    let tokens = if admin { state.store.enrollments().await? } else { Vec::new() };
    let now = crate::now_ms();
    let body = html! {
        @if !tokens.is_empty() {
            h2 { "Enrollment tokens" }
            p { "Made with " code { "vakt-collector enroll create" } "; the secret is shown once there and kept here only as a hash." }
            (table("Enrollment tokens", &["Token", "Agents", "Uses", "Until", "State", "By"], html! {
                tbody {
                    @for t in &tokens {
                        tr {
                            td { "#" (t.id) }
                            td { (t.agents) }
                            td { (t.uses) @if let Some(max) = t.max_uses { " of " (max) } }
                            td { (when(t.expires_ms, now)) }
                            td { (t.state(now)) }
                            td { (t.created_by) }
                        }
                    }
                }
            }))
        }
        @if !enrolled.is_empty() {
            h2 { "Enrolled agents" }
            (table("Enrolled agents", &["Agent", "Enrolled", "Certificate until", "Version", "State", ""], html! {
                tbody {
                    @for e in &enrolled {
                        tr {
                            td { (e.agent) }
                            td { (when(e.enrolled_ms, now)) " (token #" (e.enrollment) ")" }
                            td { (when(e.not_after_ms, now)) }
                            td { (e.version.as_deref().unwrap_or("-")) }
                            td {
                                @if let Some(at) = e.revoked_ms {
                                    span.err { "revoked " (when(at, now)) " by " (e.revoked_by.as_deref().unwrap_or("?")) }
                                } @else if e.not_after_ms <= now {
                                    span.err { "certificate expired" }
                                } @else { "active" }
                            }
                            td {
                                @if admin && e.revoked_ms.is_none() {
                                    form method="post" action={ "/ops/agents/" (super::urlencode(&e.agent)) "/revoke" } {
                                        (hidden_csrf(caller))
                                        button type="submit" { "Revoke" }
                                    }
                                }
                            }
                        }
                    }
                }
            }))
        }
        @for a in &agents {
            h2 {
                (a.agent) " "
                small {
                    "(" (if a.online { "online" } else { "offline" }) ", epoch " (a.epoch) ", results up to seq "
                    (a.contiguous) ", " (a.lost) " lost)"
                }
            }
            @if let Some(why) = &a.config_error {
                p.err role="alert" { "Its config file was not applied on the last reload (it runs the config it had): " (text(why)) }
            }
            (table("Checks", &["Check", "Status", "Summary"], html! {
                tbody {
                    @for CheckStateRow { agent, check, status, summary, .. } in checks.iter().filter(|c| c.agent == a.agent) {
                        tr {
                            td { (check_link(agent, check)) }
                            td { (check_status(status)) } td { (summary) }
                        }
                    }
                }
            }))
        }
        @if agents.is_empty() { p { "No agent has connected yet." } }
    };
    Ok(page("Agents and checks", Some(caller), body))
}

async fn check_page(
    state: &AppState,
    caller: &Caller,
    agent: &str,
    check: &str,
) -> Result<String, crate::store::StoreError> {
    let history = state.store.check_history(agent, check, 60).await?;
    let now = crate::now_ms();
    let title = format!("{agent} / {check}");
    if history.is_empty() {
        return Ok(page(&title, Some(caller), html! { p { "No results stored for this check." } }));
    }
    let durations: Vec<f64> = history.iter().map(|h| h.duration_ms).collect();
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    for HistoryRow { metrics, .. } in &history {
        for m in metrics {
            if names.len() < 8 && !names.iter().any(|(n, _)| *n == m.name) {
                names.push((m.name.clone(), m.unit.clone()));
            }
        }
    }
    let charts = names.iter().map(|(name, unit)| {
        let values: Vec<f64> =
            history.iter().filter_map(|h| h.metrics.iter().find(|m| m.name == *name).map(|m| m.value)).collect();
        let title = match unit {
            Some(u) => format!("{name} ({u})"),
            None => name.clone(),
        };
        svg::line_chart(&title, &values)
    });
    let body = html! {
        (svg::line_chart("duration (ms)", &durations))
        @for chart in charts { (chart) }
        h2 { "Recent results" }
        (table("Recent results", &["When", "Status", "Summary", "Duration"], html! {
            tbody {
                @for HistoryRow { ts_ms: ts, status, summary, duration_ms: duration, .. } in history.iter().rev().take(20) {
                    tr { td { (when(*ts, now)) } td { (check_status(status)) } td { (summary) } td { (format!("{duration:.1} ms")) } }
                }
            }
        }))
    };
    Ok(page(&title, Some(caller), body))
}
