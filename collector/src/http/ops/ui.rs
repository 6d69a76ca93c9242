//! The operator web UI: server-rendered HTML, plain forms (POST + CSRF field, then a redirect),
//! so everything works without JavaScript. A person sees only the controls their role may use.

use std::fmt::Write as _;

use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::{BODY_LIMIT, Caller, SESSION_COOKIE, SESSION_MS, Via, caller, path_id};
use crate::actions::change::{Body, Change, PUBLIC_STATES, Refused};
use crate::auth::{self, Perm};
use crate::http::html::esc;
use crate::http::state::AppState;
use crate::store::audit::{Entry, Who};
use crate::store::reminders::{CLASSIFICATIONS, REPORTS};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1a1a1a;line-height:1.45}\
a{color:#0645ad}nav{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ccc;padding-bottom:.5rem;flex-wrap:wrap}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
.sev-critical{color:#a00000;font-weight:bold}.sev-major{color:#8a4b00;font-weight:bold}form.inline{display:inline}\
fieldset{margin:.5rem 0;border:1px solid #ccc}label{display:inline-block;margin:.2rem .5rem .2rem 0}\
button{padding:.3rem .8rem;margin:.2rem 0}.msg{background:#eef6ee;border:1px solid #5a5;padding:.5rem}\
.err{background:#fbeaea;border:1px solid #a55;padding:.5rem}.overdue{color:#a00000;font-weight:bold}\
:focus{outline:3px solid #1a5fb4;outline-offset:2px}";

fn page(title: &str, caller: Option<&Caller>, body: &str) -> String {
    let mut nav = String::new();
    if let Some(c) = caller {
        nav.push_str(
            "<nav aria-label=\"Operator\"><a href=\"/ops\">Dashboard</a><a href=\"/ops/agents\">Agents</a><a href=\"/ops/deviations\">Deviations</a>\
             <a href=\"/ops/breaches\">Breaches</a><a href=\"/ops/customers\">Customers</a><a href=\"/ops/windows\">Maintenance</a><a href=\"/ops/reports/yearly\">Yearly report</a>",
        );
        if c.may(Perm::Admin) {
            nav.push_str("<a href=\"/ops/audit\">Audit trail</a><a href=\"/ops/users\">Users and tokens</a>");
        }
        let _ = write!(
            nav,
            "<a href=\"/\">Public status page</a><span>Signed in as <strong>{}</strong> ({})</span>\
             <form class=\"inline\" method=\"post\" action=\"/logout\"><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form></nav>",
            esc(&c.who.name),
            c.role,
            esc(c.csrf())
        );
    }
    format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{} · Vakt</title><style>{STYLE}</style><script src=\"/ops.js\" defer></script></head><body>{nav}<main><h1>{}</h1>{body}</main></body></html>\n",
        esc(title),
        esc(title)
    )
}

pub fn refusal_page(status: StatusCode, reason: &str, request_id: &str) -> String {
    page(
        status.canonical_reason().unwrap_or("Refused"),
        None,
        &format!(
            "<p class=\"err\" role=\"alert\">{}</p><p>Request id <code>{}</code> (recorded in the audit trail).</p><p><a href=\"/login\">Sign in</a></p>",
            esc(reason),
            esc(request_id)
        ),
    )
}

/// Progressive enhancement: countdowns to legal deadlines tick without a reload.
pub const SCRIPT: &str = r#"(function(){document.documentElement.dataset.js='1';function tick(){var now=Date.now();document.querySelectorAll('time[data-due]').forEach(function(t){var ms=Date.parse(t.getAttribute('data-due'))-now;var a=Math.abs(ms),h=Math.floor(a/3600000),m=Math.floor(a%3600000/60000);t.textContent=(ms<0?'overdue by ':'in ')+h+' h '+m+' min';if(ms<0)t.className='overdue';});}tick();setInterval(tick,30000);})();"#;

fn countdown(due_ms: i64, now: i64) -> String {
    let ms = due_ms - now;
    let a = ms.abs();
    let text =
        format!("{}{} h {} min", if ms < 0 { "overdue by " } else { "in " }, a / 3_600_000, a % 3_600_000 / 60_000);
    format!(
        "<time datetime=\"{0}\" data-due=\"{0}\"{1}>{text}</time>",
        crate::rules::time::rfc3339(due_ms),
        if ms < 0 { " class=\"overdue\"" } else { "" }
    )
}

fn html(body: String) -> Response {
    Html(body).into_response()
}

fn hidden_csrf(caller: &Caller) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(caller.csrf()))
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
    let error =
        q.error.as_deref().map(|e| format!("<p class=\"err\" role=\"alert\">{}</p>", esc(e))).unwrap_or_default();
    let body = format!(
        "{error}<form method=\"post\" action=\"/login\"><input type=\"hidden\" name=\"next\" value=\"{}\">\
         <p><label for=\"user\">User name</label><br><input id=\"user\" name=\"user\" autocomplete=\"username\" required></p>\
         <p><label for=\"password\">Password</label><br><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         <p><button type=\"submit\">Sign in</button></p></form>",
        esc(&safe_next(q.next.as_deref()))
    );
    html(page("Sign in", None, &body))
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

/// GET pages and the admin forms.
pub async fn dispatch(State(state): State<AppState>, name: &'static str, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return Redirect::to("/login").into_response() };
    let now = crate::now_ms();
    let result = match name {
        "dashboard" => dashboard(&state, &caller, now).await,
        "incident" => incident_page(&state, &caller, path_id(&req).unwrap_or(0), query(&req, "msg"), now).await,
        "audit" => audit_page(&state, &caller).await,
        "deviations" => deviations_page(&state, &caller, now).await,
        "customers" => customers_page(&state, &caller, None).await,
        "windows" => windows_page(&state, &caller, None).await,
        "agents" => agents_page(&state, &caller).await,
        "check" => {
            let (agent, check) = (query(&req, "agent").unwrap_or_default(), query(&req, "check").unwrap_or_default());
            check_page(&state, &caller, &agent, &check).await
        }
        "window_add" => {
            let fields: Vec<(String, String)> = match form(req).await {
                Ok(f) => f,
                Err(m) => {
                    return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(&caller), &esc(&m))))
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
                Ok(id) => {
                    windows_page(
                        &state,
                        &caller,
                        Some(format!("<p class=\"msg\" role=\"status\">Window #{id} added.</p>")),
                    )
                    .await
                }
                Err((status, m)) => {
                    return (
                        status,
                        html(page("Not done", Some(&caller), &format!("<p class=\"err\">{}</p>", esc(&m)))),
                    )
                        .into_response();
                }
            }
        }
        "window_cancel" => {
            let id = path_id(&req).unwrap_or(0);
            match super::api::cancel_window(&state, &caller, id).await {
                Ok(true) => return Redirect::to("/ops/windows").into_response(),
                Ok(false) => {
                    return (StatusCode::NOT_FOUND, html(page("No such window", Some(&caller), ""))).into_response();
                }
                Err(e) => Err(e),
            }
        }
        "customer_add" => return customer_add(&state, &caller, req).await,
        "breaches" => breaches_page(&state, &caller).await,
        "yearly" => {
            let year = query(&req, "year").and_then(|y| y.parse().ok()).filter(|y| (2000..=2200).contains(y));
            yearly_page(&state, &caller, year.unwrap_or_else(super::api::current_year)).await
        }
        "users" => users_page(&state, &caller, None).await,
        "user_add" => return user_add(&state, &caller, req).await,
        "token_create" => return token_create(&state, &caller, req).await,
        "token_revoke" => {
            let id = path_id(&req).unwrap_or(0);
            match state.store.revoke_token(&caller.who, id, now).await {
                Ok(true) => return Redirect::to("/ops/users").into_response(),
                Ok(false) => {
                    return (StatusCode::NOT_FOUND, html(page("No such token", Some(&caller), ""))).into_response();
                }
                Err(e) => Err(e),
            }
        }
        "logout" => {
            if let Via::Session { id_hash, .. } = &caller.via {
                let _ = state.store.end_session(&caller.who, id_hash, now).await;
            }
            return ([(header::SET_COOKIE, clear_cookie(&state))], Redirect::to("/login")).into_response();
        }
        _ => return StatusCode::NOT_FOUND.into_response(),
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
pub async fn change(State(state): State<AppState>, name: &'static str, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return Redirect::to("/login").into_response() };
    let id = path_id(&req).unwrap_or(0);
    // Form fields arrive as strings; components come as one comma-separated field.
    let fields: Vec<(String, String)> = match form(req).await {
        Ok(f) => f,
        Err(m) => return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(&caller), &esc(&m)))).into_response(),
    };
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).filter(|v| !v.is_empty());
    // A postmortem or breach form sends every field; an emptied field is kept as empty text.
    let keep = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let number = |k: &str| get(k).map(|v| v.trim().parse::<i64>().map_err(|_| format!("`{k}` must be a whole number")));
    let (subjects_approx, records_approx) =
        match (number("subjects_approx").transpose(), number("records_approx").transpose()) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(m), _) | (_, Err(m)) => {
                return (
                    StatusCode::BAD_REQUEST,
                    html(page("Not done", Some(&caller), &format!("<p class=\"err\">{}</p>", esc(&m)))),
                )
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
        title: get("title"),
        components: get("components")
            .map(|c| c.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect())
            .unwrap_or_default(),
        csrf: None,
    };
    let change = Change::from_body(name, id, body);
    let outcome = match change {
        Ok(c) => c.apply(&state.store, &state.policy, &caller.who, crate::now_ms()).await,
        Err(r) => Err(r),
    };
    match outcome {
        Ok(applied) => {
            state.changed();
            let target = match (name, applied.id) {
                ("open", Some(new)) => new,
                ("done", _) => get("incident").and_then(|v| v.parse().ok()).unwrap_or(0),
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
            let back = if id > 0 {
                format!("<p><a href=\"/ops/incidents/{id}\">Back to #{id}</a></p>")
            } else {
                String::new()
            };
            let body = format!("<p class=\"err\" role=\"alert\">{}</p>{back}", esc(&m));
            (StatusCode::BAD_REQUEST, html(page("Not done", Some(&caller), &body))).into_response()
        }
    }
}

async fn dashboard(state: &AppState, caller: &Caller, now: i64) -> Result<String, crate::store::StoreError> {
    let incidents = state.store.incidents(true).await?;
    let checks = state.store.check_states().await?;
    let agents = state.store.agents().await?;
    let mut b = String::new();
    let _ = write!(b, "<h2>Open incidents ({})</h2>", incidents.len());
    if incidents.is_empty() {
        b.push_str("<p>No open incidents.</p>");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Title</th><th scope=\"col\">State</th><th scope=\"col\">Severity</th><th scope=\"col\">Opened</th><th scope=\"col\">Assignee</th></tr></thead><tbody>");
        for i in &incidents {
            let _ = write!(
                b,
                "<tr><td><a href=\"/ops/incidents/{0}\">#{0}</a></td><td><a href=\"/ops/incidents/{0}\">{1}</a></td><td>{2}</td><td class=\"sev-{3}\">{3}</td><td>{4}</td><td>{5}</td></tr>",
                i.id,
                esc(&i.title),
                esc(&i.state),
                esc(&i.severity),
                crate::rules::time::rfc3339(i.created_ms),
                esc(i.assignee.as_deref().unwrap_or("—"))
            );
        }
        b.push_str("</tbody></table>");
    }
    let unhealthy: Vec<_> = checks.iter().filter(|c| c.2 != "ok").collect();
    let _ = write!(b, "<h2>Unhealthy checks ({})</h2>", unhealthy.len());
    if unhealthy.is_empty() {
        b.push_str("<p>Every check is ok.</p>");
    } else {
        b.push_str("<table><thead><tr><th scope=\"col\">Agent</th><th scope=\"col\">Check</th><th scope=\"col\">Status</th><th scope=\"col\">Summary</th></tr></thead><tbody>");
        for (agent, check, status, summary, _) in unhealthy {
            let _ = write!(
                b,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(agent),
                esc(check),
                esc(status),
                esc(summary)
            );
        }
        b.push_str("</tbody></table>");
    }
    let silent: Vec<_> = agents.iter().filter(|a| !a.online).collect();
    let _ = write!(b, "<h2>Silent agents ({})</h2>", silent.len());
    if silent.is_empty() {
        let _ = write!(b, "<p>All {} agents are online.</p>", agents.len());
    } else {
        b.push_str("<ul>");
        for a in silent {
            let _ = write!(b, "<li>{}</li>", esc(&a.agent));
        }
        b.push_str("</ul>");
    }
    if caller.may(Perm::Triage) {
        let _ = write!(
            b,
            "<h2>Open an incident</h2><form method=\"post\" action=\"/ops/incidents\">{}\
             <p><label for=\"title\">Title</label><br><input id=\"title\" name=\"title\" size=\"60\" maxlength=\"200\" required></p>\
             <p><label for=\"severity\">Severity</label> <select id=\"severity\" name=\"severity\"><option>critical</option><option selected>major</option><option>minor</option></select>\
             <label for=\"components\">Affected components (comma-separated)</label> <input id=\"components\" name=\"components\"></p>\
             <p><button type=\"submit\">Open incident</button></p></form>",
            hidden_csrf(caller)
        );
    }
    let _ = now;
    Ok(page("Dashboard", Some(caller), &b))
}

fn form_button(caller: &Caller, id: i64, route: &str, label: &str) -> String {
    format!(
        "<form class=\"inline\" method=\"post\" action=\"/ops/incidents/{id}/{route}\">{}<button type=\"submit\">{label}</button></form> ",
        hidden_csrf(caller)
    )
}

fn select(name: &str, label: &str, options: &[&str]) -> String {
    let opts: String = options.iter().map(|o| format!("<option value=\"{o}\">{o}</option>")).collect();
    format!("<label for=\"{name}\">{label}</label> <select id=\"{name}\" name=\"{name}\">{opts}</select>")
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
        return Ok(page("No such incident", Some(caller), &format!("<p>There is no incident #{id}.</p>")));
    };
    let mut b = String::new();
    if let Some(m) = msg {
        let _ = write!(b, "<p class=\"msg\" role=\"status\">{}</p>", esc(&m));
    }
    let _ = write!(
        b,
        "<dl><dt>State</dt><dd id=\"state\">{}</dd><dt>Severity</dt><dd class=\"sev-{1}\">{1} ({2})</dd><dt>Source</dt><dd>{3}</dd>\
         <dt>Assignee</dt><dd>{4}</dd><dt>Classification</dt><dd>{5}</dd><dt>Public</dt><dd>{6}</dd><dt>Runbook</dt><dd>{7}</dd></dl>",
        esc(&i.state),
        esc(&i.severity),
        esc(&i.urgency),
        esc(&i.source),
        esc(i.assignee.as_deref().unwrap_or("—")),
        esc(&i.classification),
        if i.public { "yes, on the status page" } else { "no" },
        esc(i.runbook.as_deref().unwrap_or("—")),
    );
    let filed = store.filed_reports(id).await?;
    let clocks = crate::rules::reminders::clocks(&i.classification, i.aware_at_ms, &filed);
    if !clocks.is_empty() {
        b.push_str("<h2>Regulatory deadlines</h2><ul>");
        for c in &clocks {
            let _ = write!(
                b,
                "<li>{}: due {} ({})</li>",
                esc(c.label),
                crate::rules::time::rfc3339(c.due_ms),
                countdown(c.due_ms, now)
            );
        }
        b.push_str("</ul>");
    }
    if i.classification != "operational" {
        b.push_str(&drafts_links(id));
    }
    if caller.may(Perm::Triage) {
        let csrf = hidden_csrf(caller);
        b.push_str("<h2>Actions</h2><p>");
        if i.state == "triggered" {
            b.push_str(&form_button(caller, id, "acknowledge", "Acknowledge"));
        }
        if i.state == "resolved" {
            b.push_str(&form_button(caller, id, "reopen", "Reopen"));
        } else {
            b.push_str(&form_button(caller, id, "escalate", "Escalate now"));
            b.push_str(&form_button(caller, id, "resolve", "Resolve"));
        }
        b.push_str("</p>");
        let _ = write!(
            b,
            "<fieldset><legend>Triage</legend><form method=\"post\" action=\"/ops/incidents/{id}/severity\">{csrf}{}<button type=\"submit\">Set severity</button></form>\
             <form method=\"post\" action=\"/ops/incidents/{id}/assign\">{csrf}<label for=\"assignee\">Assign to</label> <input id=\"assignee\" name=\"assignee\" required><button type=\"submit\">Assign</button></form></fieldset>\
             <fieldset><legend>Escalate to other competence</legend><form method=\"post\" action=\"/ops/incidents/{id}/responders\">{csrf}<label for=\"target\">Responder</label> <input id=\"target\" name=\"target\" placeholder=\"team:network, person:alice, oncall:db\" required><button type=\"submit\">Page responder</button></form></fieldset>\
             <fieldset><legend>Public update (shown on the status page)</legend><form method=\"post\" action=\"/ops/incidents/{id}/updates\">{csrf}{}\
             <br><label for=\"update-text\">Message</label><br><textarea id=\"update-text\" name=\"text\" rows=\"3\" cols=\"70\" required></textarea><br><button type=\"submit\">Publish update</button></form></fieldset>\
             <fieldset><legend>Internal note</legend><form method=\"post\" action=\"/ops/incidents/{id}/notes\">{csrf}<label for=\"note-text\">Note</label><br><textarea id=\"note-text\" name=\"text\" rows=\"2\" cols=\"70\" required></textarea><br><button type=\"submit\">Add note</button></form></fieldset>\
             <fieldset><legend>Classification</legend><form method=\"post\" action=\"/ops/incidents/{id}/classify\">{csrf}{}<label for=\"aware_at\">Aware since (RFC 3339, default now)</label> <input id=\"aware_at\" name=\"aware_at\"><button type=\"submit\">Classify</button></form>\
             <form method=\"post\" action=\"/ops/incidents/{id}/reports\">{csrf}{}<label for=\"reference\">Reference</label> <input id=\"reference\" name=\"reference\"><button type=\"submit\">Record as filed</button></form></fieldset>\
             <fieldset><legend>Postmortem action</legend><form method=\"post\" action=\"/ops/incidents/{id}/actions\">{csrf}<label for=\"action-text\">Action</label> <input id=\"action-text\" name=\"text\" required> <label for=\"owner\">Owner</label> <input id=\"owner\" name=\"owner\" required> <label for=\"due\">Due</label> <input id=\"due\" name=\"due\" type=\"date\" required><button type=\"submit\">Add action</button></form></fieldset>",
            select("severity", "Severity", &["critical", "major", "minor"]),
            select("status", "Status", &PUBLIC_STATES),
            select("classification", "Classification", CLASSIFICATIONS),
            select("report", "Report", REPORTS),
        );
    }
    let actions = store.actions(id).await?;
    if !actions.is_empty() {
        b.push_str("<h2>Postmortem actions</h2><ul>");
        for a in &actions {
            let done = if a.done_ms.is_some() {
                "done".to_string()
            } else if caller.may(Perm::Triage) {
                format!(
                    "<form class=\"inline\" method=\"post\" action=\"/ops/actions/{}/done\">{}<input type=\"hidden\" name=\"incident\" value=\"{id}\"><button type=\"submit\">Mark done</button></form>",
                    a.id,
                    hidden_csrf(caller)
                )
            } else {
                format!("open, due {}", crate::rules::time::rfc3339(a.due_ms))
            };
            let _ = write!(
                b,
                "<li>#{} {} — {} (due {}) {done}</li>",
                a.id,
                esc(&a.text),
                esc(&a.owner),
                crate::rules::time::rfc3339(a.due_ms)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str(&customers_section(caller, &i, &store.affected_customers(id).await?, state.policy.public.direct_max));
    b.push_str(&postmortem_section(caller, id, store.postmortem(id).await?.as_ref()));
    let breach = store.breaches(Some(id)).await?.into_iter().next();
    b.push_str(&breach_section(caller, id, breach.as_ref()));
    let alerts = store.alerts(id).await?;
    if !alerts.is_empty() {
        b.push_str("<h2>Alerts</h2><ul>");
        for (agent, check, active) in alerts.iter().take(200) {
            let check = if check.is_empty() { "(host)" } else { check };
            let _ =
                write!(b, "<li>{}/{} — {}</li>", esc(agent), esc(check), if *active { "active" } else { "cleared" });
        }
        if alerts.len() > 200 {
            let _ = write!(b, "<li>… and {} more</li>", alerts.len() - 200);
        }
        b.push_str("</ul>");
    }
    b.push_str("<h2>Timeline</h2><table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">What</th><th scope=\"col\">Detail</th></tr></thead><tbody id=\"timeline\">");
    for e in store.timeline(id).await? {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            crate::rules::time::rfc3339(e.ts_ms),
            esc(&e.actor),
            esc(&e.kind),
            esc(&e.text)
        );
    }
    b.push_str("</tbody></table>");
    Ok(page(&format!("#{} {}", i.id, i.title), Some(caller), &b))
}

async fn audit_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let mut b = String::new();
    match state.store.verify_audit().await {
        Ok(v) => {
            let _ = write!(
                b,
                "<p class=\"msg\" role=\"status\">Chain intact: {} records ({} from before the audit key), head <code>{}</code>.</p>",
                v.records, v.unkeyed, v.head
            );
        }
        Err(e) => {
            let _ = write!(b, "<p class=\"err\" role=\"alert\">Chain broken: {}</p>", esc(&e.to_string()));
        }
    }
    b.push_str("<p>Export: <code>vakt-collector audit export</code> or <a href=\"/api/v1/audit?limit=1000\">/api/v1/audit</a>.</p>\
        <table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">When</th><th scope=\"col\">Who</th><th scope=\"col\">Role</th><th scope=\"col\">Action</th><th scope=\"col\">Object</th><th scope=\"col\">Outcome</th><th scope=\"col\">Source</th><th scope=\"col\">Request</th><th scope=\"col\">Detail</th></tr></thead><tbody>");
    for r in state.store.audit_recent(500).await? {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td></tr>",
            r.seq,
            crate::rules::time::rfc3339(r.ts_ms),
            esc(&r.actor),
            esc(&r.role),
            esc(&r.action),
            esc(&r.object),
            esc(&r.outcome),
            esc(&r.source),
            esc(&r.request_id),
            esc(&r.detail)
        );
    }
    b.push_str("</tbody></table>");
    Ok(page("Audit trail", Some(caller), &b))
}

async fn users_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<String>,
) -> Result<String, crate::store::StoreError> {
    let mut b = notice.unwrap_or_default();
    let csrf = hidden_csrf(caller);
    b.push_str("<h2>Users</h2><table><thead><tr><th scope=\"col\">Name</th><th scope=\"col\">Role</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for u in state.store.users().await? {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&u.name),
            u.role,
            if u.disabled_ms.is_some() { "disabled" } else { "active" }
        );
    }
    let _ = write!(
        b,
        "</tbody></table><h2>Add a user</h2><form method=\"post\" action=\"/ops/users\">{csrf}\
         <label for=\"new-name\">Name</label> <input id=\"new-name\" name=\"name\" required> {}\
         <label for=\"new-password\">Password (≥ 12 characters)</label> <input id=\"new-password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Add user</button></form>",
        select("role", "Role", &["viewer", "technician", "admin"])
    );
    b.push_str("<h2>API tokens</h2><table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Owner</th><th scope=\"col\">Name</th><th scope=\"col\">Scopes</th><th scope=\"col\">Expires</th><th scope=\"col\">Last used</th><th scope=\"col\">State</th></tr></thead><tbody>");
    let now = crate::now_ms();
    for t in state.store.tokens(None).await? {
        let st = if t.revoked_ms.is_some() {
            "revoked".to_string()
        } else if t.expires_ms <= now {
            "expired".to_string()
        } else {
            format!(
                "active <form class=\"inline\" method=\"post\" action=\"/ops/tokens/{}/revoke\">{csrf}<button type=\"submit\">Revoke</button></form>",
                t.id
            )
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{st}</td></tr>",
            t.id,
            esc(&t.user),
            esc(&t.name),
            auth::scopes_text(&t.scopes),
            crate::rules::time::rfc3339(t.expires_ms),
            t.last_used_ms.map_or_else(|| "never".to_string(), crate::rules::time::rfc3339)
        );
    }
    let _ = write!(
        b,
        "</tbody></table><h2>Create a token</h2><form method=\"post\" action=\"/ops/tokens\">{csrf}\
         <label for=\"tok-user\">Owner</label> <input id=\"tok-user\" name=\"user\" value=\"{}\" required>\
         <label for=\"tok-name\">Name</label> <input id=\"tok-name\" name=\"name\" required>\
         <label for=\"tok-scopes\">Scopes</label> <input id=\"tok-scopes\" name=\"scopes\" value=\"read\">\
         <label for=\"tok-expires\">Expires after</label> <input id=\"tok-expires\" name=\"expires\" value=\"90d\">\
         <button type=\"submit\">Create token</button></form>",
        esc(&caller.who.name)
    );
    Ok(page("Users and tokens", Some(caller), &b))
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
        Err(m) => return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), &esc(&m)))).into_response(),
    };
    let checked = f.role.parse::<auth::Role>().and_then(|role| {
        auth::check_user_name(&f.name).and_then(|()| auth::check_password(&f.password)).map(|()| role)
    });
    let outcome = match checked {
        Ok(role) => crate::actions::accounts::add_user_bounded(
            &state.store,
            &state.hashing,
            &caller.who,
            &f.name,
            role,
            f.password,
        )
        .await
        .map_err(|e| e.to_string()),
        Err(m) => Err(m),
    };
    let notice = match outcome {
        Ok(true) => format!("<p class=\"msg\" role=\"status\">User {} added.</p>", esc(&f.name)),
        Ok(false) => {
            return (
                StatusCode::CONFLICT,
                html(page("Not done", Some(caller), &format!("<p class=\"err\">User {} exists.</p>", esc(&f.name)))),
            )
                .into_response();
        }
        Err(m) => {
            return (
                StatusCode::BAD_REQUEST,
                html(page("Not done", Some(caller), &format!("<p class=\"err\">{}</p>", esc(&m)))),
            )
                .into_response();
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
        Err(m) => return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), &esc(&m)))).into_response(),
    };
    match super::api::create_token(state, caller, body).await {
        Ok((id, token)) => {
            let notice = format!(
                "<p class=\"msg\" role=\"status\">Token #{id} created. Copy it now; it is not shown again:<br><code id=\"new-token\">{}</code></p>",
                esc(&token)
            );
            match users_page(state, caller, Some(notice)).await {
                Ok(p) => ([(header::CACHE_CONTROL, "no-store")], html(p)).into_response(),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            }
        }
        Err(m) => (
            StatusCode::BAD_REQUEST,
            html(page("Not done", Some(caller), &format!("<p class=\"err\">{}</p>", esc(&m)))),
        )
            .into_response(),
    }
}

fn textarea(name: &str, label: &str, value: &str, editable: bool) -> String {
    if editable {
        format!(
            "<p><label for=\"{name}\">{label}</label><br><textarea id=\"{name}\" name=\"{name}\" rows=\"3\" cols=\"80\">{}</textarea></p>",
            esc(value)
        )
    } else {
        format!("<h3>{label}</h3><p>{}</p>", if value.is_empty() { "—".to_string() } else { esc(value) })
    }
}

fn postmortem_section(caller: &Caller, id: i64, p: Option<&crate::model::PostmortemRow>) -> String {
    let edit = caller.may(Perm::Triage);
    let get = |f: fn(&crate::model::PostmortemRow) -> &str| p.map_or("", f);
    let mut b = String::from("<h2>Postmortem</h2>");
    if p.is_none() && !edit {
        b.push_str("<p>No postmortem yet.</p>");
        return b;
    }
    if let Some(p) = p {
        let _ = write!(
            b,
            "<p>In the deviation register; follow-up <strong>{}</strong>, last edited by {} at {}.</p>",
            esc(&p.follow_up),
            esc(&p.updated_by),
            crate::rules::time::rfc3339(p.updated_ms)
        );
    }
    if edit {
        let _ = write!(b, "<form method=\"post\" action=\"/ops/incidents/{id}/postmortem\">{}", hidden_csrf(caller));
    }
    b.push_str(&textarea("summary", "What happened", get(|p| &p.summary), edit));
    b.push_str(&textarea("cause", "Cause", get(|p| &p.cause), edit));
    b.push_str(&textarea("impact", "Impact", get(|p| &p.impact), edit));
    b.push_str(&textarea("lessons", "Lessons learned", get(|p| &p.lessons), edit));
    if edit {
        let current = p.map_or("open", |p| p.follow_up.as_str());
        let opts: String = crate::store::deviations::FOLLOW_UP
            .iter()
            .map(|o| format!("<option value=\"{o}\"{}>{o}</option>", if *o == current { " selected" } else { "" }))
            .collect();
        let _ = write!(
            b,
            "<p><label for=\"follow_up\">Follow-up</label> <select id=\"follow_up\" name=\"follow_up\">{opts}</select> <button type=\"submit\">Save postmortem</button></p></form>"
        );
    }
    b
}

fn breach_section(caller: &Caller, id: i64, breach: Option<&crate::model::BreachRow>) -> String {
    let Some(br) = breach else { return String::new() };
    let edit = caller.may(Perm::Triage);
    let mut b = String::from("<h2>Personal-data breach (GDPR Art. 33)</h2>");
    let reported = br.reported_ms.map_or_else(
        || "not reported".to_string(),
        |at| {
            format!(
                "reported {} ({})",
                crate::rules::time::rfc3339(at),
                br.reference.as_deref().unwrap_or("no reference")
            )
        },
    );
    let _ = write!(b, "<p>{}.</p>", esc(&reported));
    if edit {
        let _ = write!(b, "<form method=\"post\" action=\"/ops/incidents/{id}/breach\">{}", hidden_csrf(caller));
    }
    b.push_str(&textarea("nature", "Nature of the breach", &br.nature, edit));
    b.push_str(&textarea("subject_categories", "Categories of data subjects", &br.subject_categories, edit));
    b.push_str(&textarea("record_categories", "Categories of personal data", &br.record_categories, edit));
    b.push_str(&textarea("consequences", "Likely consequences", &br.consequences, edit));
    b.push_str(&textarea("measures", "Measures taken or proposed", &br.measures, edit));
    b.push_str(&textarea("contact", "Contact point", &br.contact, edit));
    b.push_str(&textarea("not_reported_reason", "If not reported: why", &br.not_reported_reason, edit));
    let num = |v: Option<i64>| v.map(|n| n.to_string()).unwrap_or_default();
    if edit {
        let _ = write!(
            b,
            "<p><label for=\"subjects_approx\">Data subjects (approx.)</label> <input id=\"subjects_approx\" name=\"subjects_approx\" inputmode=\"numeric\" value=\"{}\">\
             <label for=\"records_approx\">Records (approx.)</label> <input id=\"records_approx\" name=\"records_approx\" inputmode=\"numeric\" value=\"{}\">\
             <button type=\"submit\">Save breach details</button></p></form>",
            num(br.subjects_approx),
            num(br.records_approx)
        );
    } else {
        let _ = write!(b, "<p>Data subjects ≈ {}; records ≈ {}</p>", num(br.subjects_approx), num(br.records_approx));
    }
    b
}

fn drafts_links(id: i64) -> String {
    let links: Vec<String> = crate::rules::compliance::DRAFTS
        .iter()
        .map(|r| format!("{r}: <a href=\"/api/v1/incidents/{id}/drafts/{r}?format=markdown\">Markdown</a> · <a href=\"/api/v1/incidents/{id}/drafts/{r}\">JSON</a>"))
        .collect();
    format!("<h2>Report drafts</h2><ul><li>{}</li></ul>", links.join("</li><li>"))
}

async fn deviations_page(state: &AppState, caller: &Caller, now: i64) -> Result<String, crate::store::StoreError> {
    let mut b = String::from(
        "<p>Every incident with a postmortem, with its follow-up and its actions.</p><table><thead><tr><th scope=\"col\">Incident</th>\
         <th scope=\"col\">Severity</th><th scope=\"col\">Classification</th><th scope=\"col\">Opened</th><th scope=\"col\">Cause</th>\
         <th scope=\"col\">Follow-up</th><th scope=\"col\">Open actions</th><th scope=\"col\">Overdue</th></tr></thead><tbody>",
    );
    for d in state.store.deviations(now).await? {
        let _ = write!(
            b,
            "<tr><td><a href=\"/ops/incidents/{0}\">#{0} {1}</a></td><td>{2}</td><td>{3}</td><td>{4}</td><td>{5}</td><td>{6}</td><td>{7}</td><td{8}>{9}</td></tr>",
            d.incident_id,
            esc(&d.title),
            esc(&d.severity),
            esc(&d.classification),
            crate::rules::time::rfc3339(d.opened_ms),
            esc(&d.cause),
            esc(&d.follow_up),
            d.actions_open,
            if d.actions_overdue > 0 { " class=\"overdue\"" } else { "" },
            d.actions_overdue
        );
    }
    b.push_str("</tbody></table>");
    Ok(page("Deviation register", Some(caller), &b))
}

async fn breaches_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let mut b = String::from(
        "<p>Every personal-data breach, reported or not (GDPR Art. 33(5)).</p><table><thead><tr><th scope=\"col\">Incident</th>\
         <th scope=\"col\">Aware since</th><th scope=\"col\">Nature</th><th scope=\"col\">Data subjects</th><th scope=\"col\">Records</th>\
         <th scope=\"col\">Consequences</th><th scope=\"col\">Measures</th><th scope=\"col\">Reported</th></tr></thead><tbody>",
    );
    for r in state.store.breaches(None).await? {
        let reported = r.reported_ms.map_or_else(
            || {
                if r.not_reported_reason.is_empty() {
                    "no".to_string()
                } else {
                    format!("no: {}", r.not_reported_reason)
                }
            },
            |at| format!("{} {}", crate::rules::time::rfc3339(at), r.reference.clone().unwrap_or_default()),
        );
        let _ = write!(
            b,
            "<tr><td><a href=\"/ops/incidents/{0}\">#{0} {1}</a></td><td>{2}</td><td>{3}</td><td>{4} ≈ {5}</td><td>{6} ≈ {7}</td><td>{8}</td><td>{9}</td><td>{10}</td></tr>",
            r.incident_id,
            esc(&r.title),
            r.aware_at_ms.map(crate::rules::time::rfc3339).unwrap_or_default(),
            esc(&r.nature),
            esc(&r.subject_categories),
            r.subjects_approx.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            esc(&r.record_categories),
            r.records_approx.map(|n| n.to_string()).unwrap_or_else(|| "?".into()),
            esc(&r.consequences),
            esc(&r.measures),
            esc(&reported)
        );
    }
    b.push_str("</tbody></table>");
    Ok(page("Breach register", Some(caller), &b))
}

async fn yearly_page(state: &AppState, caller: &Caller, year: i32) -> Result<String, crate::store::StoreError> {
    let doc = super::api::yearly(state, year).await?;
    let mut b = format!(
        "<p><a href=\"/ops/reports/yearly?year={}\">{}</a> · <a href=\"/ops/reports/yearly?year={}\">{}</a> · <a href=\"/api/v1/reports/yearly?year={year}\">JSON</a></p>",
        year - 1,
        year - 1,
        year + 1,
        year + 1
    );
    let n = |v: &serde_json::Value| v.as_f64().unwrap_or(0.0);
    let sev: Vec<(String, f64)> = ["critical", "major", "minor"]
        .iter()
        .map(|s| ((*s).to_string(), n(&doc["incidents"]["by_severity"][*s])))
        .collect();
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let months: Vec<(String, f64)> =
        MONTHS.iter().enumerate().map(|(i, m)| ((*m).to_string(), n(&doc["incidents"]["by_month"][i]))).collect();
    let _ = write!(
        b,
        "<h2>Incidents: {}</h2>{}{}",
        doc["incidents"]["total"],
        crate::http::html::svg::bar_chart("Incidents by severity", &sev, ""),
        crate::http::html::svg::bar_chart("Incidents by month", &months, "")
    );
    let fmt = |v: &serde_json::Value| v.as_i64().map_or_else(|| "—".to_string(), |m| format!("{m} min"));
    let _ = write!(
        b,
        "<h2>Response</h2><p>Time to acknowledge: median {}, mean {} ({} acknowledged). Time to resolve: median {}, mean {} ({} resolved).</p>",
        fmt(&doc["time_to_acknowledge"]["median_min"]),
        fmt(&doc["time_to_acknowledge"]["mean_min"]),
        doc["time_to_acknowledge"]["count"],
        fmt(&doc["time_to_resolve"]["median_min"]),
        fmt(&doc["time_to_resolve"]["mean_min"]),
        doc["time_to_resolve"]["count"]
    );
    let uptime: Vec<(String, f64)> = doc["uptime_percent"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|u| Some((u["component"].as_str()?.to_string(), u["uptime"].as_f64()?)))
        .collect();
    if uptime.is_empty() {
        b.push_str("<h2>Uptime</h2><p>No uptime recorded for this year.</p>");
    } else {
        let _ =
            write!(b, "<h2>Uptime</h2>{}", crate::http::html::svg::bar_chart("Uptime per component", &uptime, " %"));
    }
    b.push_str("<h2>Reports filed</h2><ul>");
    for r in doc["reports_filed"].as_array().into_iter().flatten() {
        let _ = write!(b, "<li>{}: {}</li>", esc(r["report"].as_str().unwrap_or("")), r["count"]);
    }
    let _ = write!(b, "</ul><h2>Overdue postmortem actions</h2><p>{}</p>", doc["overdue_actions"]);
    Ok(page(&format!("Yearly report {year}"), Some(caller), &b))
}

fn customers_section(
    caller: &Caller,
    i: &crate::model::IncidentRow,
    affected: &[crate::store::customers::CustomerRow],
    direct_max: usize,
) -> String {
    let id = i.id;
    let mut b = String::from("<h2>Affected customers</h2>");
    if affected.is_empty() {
        b.push_str("<p>No customer is linked to this incident's components or agents.</p>");
    } else {
        b.push_str("<ul id=\"customers\">");
        for c in affected {
            let _ = write!(b, "<li>{} ({}) — {}</li>", esc(&c.name), esc(&c.lang), esc(&c.contacts.join(", ")));
        }
        b.push_str("</ul>");
    }
    let mode = match i.communication.as_deref() {
        Some("direct") => "communicated directly by e-mail".to_string(),
        Some("public") => "communicated on the status page".to_string(),
        _ if affected.len() > direct_max => {
            format!("{} affected: updates go on the status page (direct up to {direct_max})", affected.len())
        }
        _ => format!("updates go directly by e-mail (up to {direct_max} customers)"),
    };
    let _ = write!(b, "<p>{}</p>", esc(&mode));
    if caller.may(Perm::Triage) {
        let csrf = hidden_csrf(caller);
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ops/incidents/{id}/communicate\">{csrf}{}\
             <br><label for=\"customer-text\">Message to the affected customers</label><br><textarea id=\"customer-text\" name=\"text\" rows=\"3\" cols=\"70\" required></textarea><br>\
             <label><input type=\"checkbox\" name=\"public\" value=\"1\"> Publish on the status page instead</label> <button type=\"submit\">Send update</button></form>\
             <form method=\"post\" action=\"/ops/incidents/{id}/customers\">{csrf}<label for=\"customer\">Customer</label> <input id=\"customer\" name=\"customer\" required>\
             <select name=\"included\" aria-label=\"Count in or out\"><option value=\"1\">count in</option><option value=\"0\">count out</option></select><button type=\"submit\">Change</button></form>",
            select("status", "Status", &PUBLIC_STATES)
        );
    }
    b
}

async fn customers_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<String>,
) -> Result<String, crate::store::StoreError> {
    let mut b = notice.unwrap_or_default();
    b.push_str("<table><thead><tr><th scope=\"col\">Customer</th><th scope=\"col\">Language</th><th scope=\"col\">Contacts</th><th scope=\"col\">Uses</th></tr></thead><tbody>");
    for c in state.store.customers().await? {
        let uses: Vec<String> = c.uses.iter().map(|(k, n)| format!("{k}:{n}")).collect();
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.name),
            esc(&c.lang),
            esc(&c.contacts.join(", ")),
            esc(&uses.join(", "))
        );
    }
    b.push_str("</tbody></table>");
    if caller.may(Perm::Admin) {
        let _ = write!(
            b,
            "<h2>Add a customer</h2><form method=\"post\" action=\"/ops/customers\">{}\
             <p><label for=\"c-name\">Name</label> <input id=\"c-name\" name=\"name\" required> {}</p>\
             <p><label for=\"c-contacts\">Contact e-mail addresses (comma-separated)</label><br><input id=\"c-contacts\" name=\"contacts\" size=\"60\" required></p>\
             <p><label for=\"c-components\">Components used (comma-separated)</label> <input id=\"c-components\" name=\"components\">\
             <label for=\"c-agents\">Agents used</label> <input id=\"c-agents\" name=\"agents\"></p><p><button type=\"submit\">Add customer</button></p></form>",
            hidden_csrf(caller),
            select("lang", "Language", &["sv", "en"])
        );
    }
    Ok(page("Customers", Some(caller), &b))
}

async fn customer_add(state: &AppState, caller: &Caller, req: Request) -> Response {
    let fields: Vec<(String, String)> = match form(req).await {
        Ok(f) => f,
        Err(m) => return (StatusCode::BAD_REQUEST, html(page("Bad request", Some(caller), &esc(&m)))).into_response(),
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
        Ok(_) => match customers_page(
            state,
            caller,
            Some(format!("<p class=\"msg\" role=\"status\">Customer {} added.</p>", esc(&get("name")))),
        )
        .await
        {
            Ok(p) => html(p),
            Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        },
        Err((status, m)) => {
            (status, html(page("Not done", Some(caller), &format!("<p class=\"err\">{}</p>", esc(&m))))).into_response()
        }
    }
}

async fn windows_page(
    state: &AppState,
    caller: &Caller,
    notice: Option<String>,
) -> Result<String, crate::store::StoreError> {
    let now = crate::now_ms();
    let mut b = notice.unwrap_or_default();
    b.push_str("<p>Windows in collector.toml are not listed here; these are the ones made here or through the API.</p>\
        <table><thead><tr><th scope=\"col\">#</th><th scope=\"col\">Kind</th><th scope=\"col\">Reason</th><th scope=\"col\">Components</th>\
        <th scope=\"col\">Mutes</th><th scope=\"col\">From</th><th scope=\"col\">Until</th><th scope=\"col\">By</th><th scope=\"col\">State</th></tr></thead><tbody>");
    for w in state.store.windows(now - crate::http::public::status::HISTORY_MS).await? {
        let state_cell = if w.end <= now {
            "ended".to_string()
        } else if caller.may(Perm::Triage) {
            format!(
                "{} <form class=\"inline\" method=\"post\" action=\"/ops/windows/{}/cancel\">{}<button type=\"submit\">End now</button></form>",
                if w.start <= now { "active" } else { "scheduled" },
                w.id,
                hidden_csrf(caller)
            )
        } else if w.start <= now {
            "active".to_string()
        } else {
            "scheduled".to_string()
        };
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{} / {}</td><td>{}</td><td>{}</td><td>{}</td><td>{state_cell}</td></tr>",
            w.id,
            esc(&w.kind),
            esc(&w.reason),
            esc(&w.components.join(", ")),
            esc(w.agents.as_deref().unwrap_or("—")),
            esc(w.checks.as_deref().unwrap_or("—")),
            crate::rules::time::rfc3339(w.start),
            crate::rules::time::rfc3339(w.end),
            esc(&w.created_by)
        );
    }
    b.push_str("</tbody></table>");
    if caller.may(Perm::Triage) {
        let _ = write!(
            b,
            "<h2>Add a window</h2><form method=\"post\" action=\"/ops/windows\">{}<p>{}\
             <label for=\"w-reason\">Reason</label> <input id=\"w-reason\" name=\"reason\" size=\"40\" required></p>\
             <p><label for=\"w-components\">Components (comma-separated)</label> <input id=\"w-components\" name=\"components\">\
             <label for=\"w-agents\">Agents (glob)</label> <input id=\"w-agents\" name=\"agents\">\
             <label for=\"w-checks\">Checks (glob)</label> <input id=\"w-checks\" name=\"checks\"></p>\
             <p><label for=\"w-start\">Start (RFC 3339)</label> <input id=\"w-start\" name=\"start\" value=\"{}\" required>\
             <label for=\"w-end\">End</label> <input id=\"w-end\" name=\"end\" value=\"{}\" required></p><p><button type=\"submit\">Add window</button></p></form>",
            hidden_csrf(caller),
            select("kind", "Kind", &["maintenance", "silence"]),
            crate::rules::time::rfc3339(now),
            crate::rules::time::rfc3339(now + 3_600_000)
        );
    }
    Ok(page("Maintenance windows and silences", Some(caller), &b))
}

async fn agents_page(state: &AppState, caller: &Caller) -> Result<String, crate::store::StoreError> {
    let agents = state.store.agents().await?;
    let checks = state.store.check_states().await?;
    let mut b = String::new();
    for a in &agents {
        let _ = write!(
            b,
            "<h2>{} <small>({}, epoch {}, results up to seq {}, {} lost)</small></h2><table><thead><tr><th scope=\"col\">Check</th><th scope=\"col\">Status</th><th scope=\"col\">Summary</th></tr></thead><tbody>",
            esc(&a.agent),
            if a.online { "online" } else { "offline" },
            a.epoch,
            a.contiguous,
            a.lost
        );
        for (agent, check, status, summary, _) in checks.iter().filter(|c| c.0 == a.agent) {
            let _ = write!(
                b,
                "<tr><td><a href=\"/ops/check?agent={}&amp;check={}\">{}</a></td><td>{}</td><td>{}</td></tr>",
                esc(&super::urlencode(agent)),
                esc(&super::urlencode(check)),
                esc(check),
                esc(status),
                esc(summary)
            );
        }
        b.push_str("</tbody></table>");
    }
    if agents.is_empty() {
        b.push_str("<p>No agent has connected yet.</p>");
    }
    Ok(page("Agents and checks", Some(caller), &b))
}

/// A small line chart of values over time, with its range written out.
fn sparkline(title: &str, values: &[f64]) -> String {
    let (w, h) = (320.0, 60.0);
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if max > min { max - min } else { 1.0 };
    #[allow(clippy::cast_precision_loss)]
    let step = if values.len() > 1 { w / (values.len() - 1) as f64 } else { 0.0 };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f64 * step;
            format!("{x:.1},{:.1}", h - 4.0 - (v - min) / span * (h - 8.0))
        })
        .collect();
    let last = values.last().copied().unwrap_or(0.0);
    let label = format!("{title}: last {last}, min {min}, max {max} over {} results", values.len());
    format!(
        "<figure><svg role=\"img\" aria-label=\"{0}\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\"><title>{0}</title>\
         <polyline fill=\"none\" stroke=\"#1a5fb4\" stroke-width=\"2\" points=\"{1}\"/></svg><figcaption>{0}</figcaption></figure>",
        esc(&label),
        points.join(" ")
    )
}

async fn check_page(
    state: &AppState,
    caller: &Caller,
    agent: &str,
    check: &str,
) -> Result<String, crate::store::StoreError> {
    let history = state.store.check_history(agent, check, 60).await?;
    let mut b = String::new();
    if history.is_empty() {
        b.push_str("<p>No results stored for this check.</p>");
        return Ok(page(&format!("{agent} / {check}"), Some(caller), &b));
    }
    let durations: Vec<f64> = history.iter().map(|h| h.3).collect();
    b.push_str(&sparkline("duration (ms)", &durations));
    let mut names: Vec<(String, Option<String>)> = Vec::new();
    for (_, _, _, _, metrics) in &history {
        for m in metrics {
            if names.len() < 8 && !names.iter().any(|(n, _)| *n == m.name) {
                names.push((m.name.clone(), m.unit.clone()));
            }
        }
    }
    for (name, unit) in &names {
        let values: Vec<f64> =
            history.iter().filter_map(|h| h.4.iter().find(|m| m.name == *name).map(|m| m.value)).collect();
        let title = match unit {
            Some(u) => format!("{name} ({u})"),
            None => name.clone(),
        };
        b.push_str(&sparkline(&title, &values));
    }
    b.push_str("<h2>Recent results</h2><table><thead><tr><th scope=\"col\">When</th><th scope=\"col\">Status</th><th scope=\"col\">Summary</th><th scope=\"col\">Duration</th></tr></thead><tbody>");
    for (ts, status, summary, duration, _) in history.iter().rev().take(20) {
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{duration:.1} ms</td></tr>",
            crate::rules::time::rfc3339(*ts),
            esc(status),
            esc(summary)
        );
    }
    b.push_str("</tbody></table>");
    Ok(page(&format!("{agent} / {check}"), Some(caller), &b))
}
