//! `/api/v1`: JSON for the same operations as the web UI. Handlers run after the guard, so
//! the caller is known and allowed; they validate bodies and answer 400 / 404 / 409 with
//! `{"error": …}`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::{BODY_LIMIT, Caller, caller, path_id, path_name};
use crate::actions::accounts::AccountError;
use crate::actions::change::{Body, Change, Kind};
use crate::auth::{self, Role};
use crate::http::error::ApiError;
use crate::http::state::AppState;
use crate::model::IncidentRow;
use crate::store::StoreError;

/// Read a JSON body (empty = `{}`), refusing unknown fields.
async fn json_body<T: serde::de::DeserializeOwned + Default>(req: Request) -> Result<T, Response> {
    let bytes: Bytes =
        axum::body::to_bytes(req.into_body(), BODY_LIMIT).await.map_err(|_| ApiError::TooLarge.into_response())?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Invalid(format!("bad JSON body: {e}")).into_response())
}

/// POST a change (`kind` from the route table).
pub(super) async fn change(State(state): State<AppState>, kind: Kind, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return ApiError::Unauthorized("not signed in".into()).into_response() };
    let id = path_id(&req).unwrap_or(0);
    let body: Body = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let change = match Change::from_body(kind, id, body) {
        Ok(c) => c,
        Err(r) => return ApiError::from(r).into_response(),
    };
    let created = matches!(change, Change::Open { .. } | Change::Action { .. });
    match change.apply(&state.store, &state.policy.current(), &caller.who, crate::now_ms()).await {
        Ok(applied) => {
            state.changed();
            let status = if created { StatusCode::CREATED } else { StatusCode::OK };
            (status, Json(applied)).into_response()
        }
        Err(r) => ApiError::from(r).into_response(),
    }
}

pub(super) fn incident_json(i: &IncidentRow) -> Value {
    json!({
        "id": i.id, "title": i.title, "summary": i.summary, "state": i.state, "severity": i.severity,
        "urgency": i.urgency, "source": i.source, "agent": i.agent, "check": i.check,
        "assignee": i.assignee, "classification": i.classification, "runbook": i.runbook,
        "team": i.team, "created_at": crate::rules::time::rfc3339(i.created_ms),
        "acked_by": i.acked_by, "public": i.public, "aware_at": i.aware_at_ms.map(crate::rules::time::rfc3339), "resolved_at": i.resolved_ms.map(crate::rules::time::rfc3339),
    })
}

/// What serves a JSON route that is not an incident change: one per route, so the route table
/// cannot name a handler that does not exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Endpoint {
    Me,
    Incidents,
    Incident,
    Agents,
    Checks,
    CheckHistory,
    Audit,
    Users,
    Tokens,
    Deviations,
    Customers,
    Windows,
    WindowAdd,
    WindowCancel,
    IncidentCustomers,
    Subscribers,
    CustomerAdd,
    Breaches,
    Draft,
    Yearly,
    UserAdd,
    UserSet,
    TokenCreate,
    TokenRevoke,
    Enrollments,
    AgentRevoke,
}

/// `?state=open|all` of the incident list.
#[derive(Debug, Default, serde::Deserialize)]
struct IncidentsQuery {
    state: Option<String>,
}

/// `?agent=&check=&limit=` of a check's history.
#[derive(Debug, Default, serde::Deserialize)]
struct HistoryQuery {
    agent: Option<String>,
    check: Option<String>,
    limit: Option<i64>,
}

/// `?after=&limit=` of the audit trail.
#[derive(Debug, Default, serde::Deserialize)]
struct AuditQuery {
    after: Option<i64>,
    limit: Option<i64>,
}

/// `?format=json|markdown` of a report draft.
#[derive(Debug, Default, serde::Deserialize)]
struct DraftQuery {
    format: Option<String>,
}

/// `?year=` of the yearly report.
#[derive(Debug, Default, serde::Deserialize)]
struct YearQuery {
    year: Option<i32>,
}

/// A route's query parameters through axum's `Query` extractor: a value of the wrong type is
/// a 400 that names it, not a silent default.
fn query<T: serde::de::DeserializeOwned>(req: &Request) -> Result<T, ApiError> {
    axum::extract::Query::<T>::try_from_uri(req.uri())
        .map(|q| q.0)
        .map_err(|e| ApiError::Invalid(format!("query: {}", e.body_text())))
}

/// GET routes and the admin POSTs that are not incident changes.
pub(super) async fn dispatch(State(state): State<AppState>, endpoint: Endpoint, req: Request) -> Response {
    let Some(caller) = caller(&req) else { return ApiError::Unauthorized("not signed in".into()).into_response() };
    let store = &state.store;
    let result: Result<Response, StoreError> = async {
        Ok(match endpoint {
            Endpoint::Me => Json(me(&caller)).into_response(),
            Endpoint::Incidents => {
                let q: IncidentsQuery = match query(&req) {
                    Ok(q) => q,
                    Err(e) => return Ok(e.into_response()),
                };
                let open_only = match q.state.as_deref() {
                    None | Some("open") => true,
                    Some("all") => false,
                    Some(other) => return Ok(ApiError::Invalid(format!("state `{other}`: open or all")).into_response()),
                };
                let list: Vec<Value> = store.incidents(open_only).await?.iter().map(incident_json).collect();
                Json(json!({ "incidents": list })).into_response()
            }
            Endpoint::Incident => {
                let Some(id) = path_id(&req) else { return Ok(ApiError::NotFound("no such incident".into()).into_response()) };
                let Some(i) = store.incident(id).await? else {
                    return Ok(ApiError::NotFound(format!("no incident #{id}")).into_response());
                };
                let mut doc = incident_json(&i);
                let timeline: Vec<Value> = store
                    .timeline(id)
                    .await?
                    .iter()
                    .map(|e| json!({"at": crate::rules::time::rfc3339(e.ts_ms), "actor": e.actor, "kind": e.kind, "text": e.text}))
                    .collect();
                let alerts: Vec<Value> = store
                    .alerts(id)
                    .await?
                    .iter()
                    .map(|a| json!(a))
                    .collect();
                let notifications: Vec<Value> = store
                    .notifications(Some(id))
                    .await?
                    .iter()
                    .map(|n| json!({"id": n.id, "kind": n.kind, "recipient": n.recipient, "state": n.state, "attempts": n.attempts}))
                    .collect();
                let actions: Vec<Value> = store
                    .actions(id)
                    .await?
                    .iter()
                    .map(|a| json!({"id": a.id, "text": a.text, "owner": a.owner, "due": crate::rules::time::rfc3339(a.due_ms), "done": a.done_ms.is_some()}))
                    .collect();
                let filed = store.filed_reports(id).await?;
                let clocks: Vec<Value> = crate::rules::reminders::clocks(&i.classification, i.aware_at_ms, &filed)
                    .iter()
                    .map(|c| json!({"report": c.label, "due": crate::rules::time::rfc3339(c.due_ms)}))
                    .collect();
                doc["timeline"] = json!(timeline);
                doc["alerts"] = json!(alerts);
                doc["notifications"] = json!(notifications);
                doc["actions"] = json!(actions);
                doc["clocks"] = json!(clocks);
                Json(doc).into_response()
            }
            Endpoint::Agents => {
                let enrolled = store.enrolled_agents().await?;
                let mut list: Vec<Value> = store
                    .agents()
                    .await?
                    .iter()
                    .map(|a| {
                        let identity = enrolled.iter().find(|e| e.agent == a.agent);
                        json!({"agent": a.agent, "online": a.online, "epoch": a.epoch, "contiguous": a.contiguous, "lost": a.lost, "config_error": a.config_error, "enrolled": identity})
                    })
                    .collect();
                // Enrolled agents that have not connected yet are agents too.
                let connected: std::collections::HashSet<String> =
                    list.iter().filter_map(|a| a["agent"].as_str().map(str::to_string)).collect();
                for e in enrolled.iter().filter(|e| !connected.contains(&e.agent)) {
                    list.push(json!({"agent": e.agent, "online": false, "epoch": 0, "contiguous": 0, "lost": 0, "config_error": null, "enrolled": e}));
                }
                Json(json!({ "agents": list })).into_response()
            }
            Endpoint::Enrollments => {
                let now = crate::now_ms();
                let list: Vec<Value> = store
                    .enrollments()
                    .await?
                    .iter()
                    .map(|t| {
                        let mut v = json!(t);
                        v["state"] = json!(t.state(now));
                        v
                    })
                    .collect();
                Json(json!({ "enrollments": list })).into_response()
            }
            Endpoint::AgentRevoke => {
                let Some(agent) = super::path_name(&req) else {
                    return Ok(ApiError::NotFound("no such agent".into()).into_response());
                };
                if store.revoke_agent(&caller.who, &agent, crate::now_ms()).await? {
                    Json(json!({ "message": format!("agent {agent} revoked; its messages are refused within seconds") }))
                        .into_response()
                } else {
                    ApiError::NotFound(format!("no enrolled, unrevoked agent {agent}")).into_response()
                }
            }
            Endpoint::Checks => {
                let list: Vec<Value> = store
                    .check_states()
                    .await?
                    .iter()
                    .map(|c| json!(c))
                    .collect();
                Json(json!({ "checks": list })).into_response()
            }
            Endpoint::CheckHistory => {
                let q: HistoryQuery = match query(&req) {
                    Ok(q) => q,
                    Err(e) => return Ok(e.into_response()),
                };
                let (Some(agent), Some(check)) = (q.agent.as_deref(), q.check.as_deref()) else {
                    return Ok(ApiError::Invalid("`agent` and `check` are required".into()).into_response());
                };
                let limit = q.limit.unwrap_or(100).clamp(1, 500);
                let results: Vec<Value> = store
                    .check_history(agent, check, limit)
                    .await?
                    .iter()
                    .map(|h| {
                        json!({"at": crate::rules::time::rfc3339(h.ts_ms), "status": h.status, "summary": h.summary, "duration_ms": h.duration_ms, "metrics": h.metrics})
                    })
                    .collect();
                Json(json!({ "agent": agent, "check": check, "results": results })).into_response()
            }
            Endpoint::Audit => {
                let q: AuditQuery = match query(&req) {
                    Ok(q) => q,
                    Err(e) => return Ok(e.into_response()),
                };
                let after = q.after.unwrap_or(0);
                let limit = q.limit.unwrap_or(100).clamp(1, 1000);
                Json(json!({ "records": store.audit_records(after, limit).await? })).into_response()
            }
            Endpoint::Users => {
                let list: Vec<Value> = store
                    .users()
                    .await?
                    .iter()
                    .map(|u| json!({"name": u.name, "role": u.role.as_str(), "disabled": u.disabled_ms.is_some()}))
                    .collect();
                Json(json!({ "users": list })).into_response()
            }
            Endpoint::Tokens => Json(json!({ "tokens": store.tokens(None).await? })).into_response(),
            Endpoint::Deviations => Json(json!({ "deviations": store.deviations(crate::now_ms()).await? })).into_response(),
            Endpoint::Customers => Json(json!({ "customers": store.customers().await? })).into_response(),
            Endpoint::Windows => Json(json!({ "windows": store.windows(crate::now_ms() - crate::http::public::status::HISTORY_MS).await? })).into_response(),
            Endpoint::WindowAdd => {
                let body: WindowBody = match json_body(req).await {
                    Ok(b) => b,
                    Err(r) => return Ok(r),
                };
                match add_window(&state, &caller, body).await {
                    Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
                    Err(e) => e.into_response(),
                }
            }
            Endpoint::WindowCancel => {
                let Some(id) = path_id(&req) else { return Ok(ApiError::NotFound("no such window".into()).into_response()) };
                if cancel_window(&state, &caller, id).await? {
                    Json(json!({ "message": format!("window #{id} ended") })).into_response()
                } else {
                    ApiError::NotFound(format!("no running or future window #{id}")).into_response()
                }
            }
            Endpoint::IncidentCustomers => {
                let Some(id) = path_id(&req) else { return Ok(ApiError::NotFound("no such incident".into()).into_response()) };
                Json(json!({ "customers": store.affected_customers(id).await? })).into_response()
            }
            Endpoint::Subscribers => {
                let list: Vec<Value> = store
                    .subscribers()
                    .await?
                    .iter()
                    .map(|s| json!({"id": s.id, "email": s.email, "lang": s.lang, "components": s.components, "confirmed": s.confirmed_ms.is_some()}))
                    .collect();
                Json(json!({ "subscribers": list })).into_response()
            }
            Endpoint::CustomerAdd => {
                let body: CustomerBody = match json_body(req).await {
                    Ok(b) => b,
                    Err(r) => return Ok(r),
                };
                let outcome = add_customer(
                    &state,
                    &caller,
                    &body.name.unwrap_or_default(),
                    &body.lang.unwrap_or_else(|| "en".into()),
                    &body.contacts,
                    &body.components,
                    &body.agents,
                )
                .await;
                match outcome {
                    Ok(id) => (StatusCode::CREATED, Json(json!({ "id": id }))).into_response(),
                    Err(e) => e.into_response(),
                }
            }
            Endpoint::Breaches => Json(json!({ "breaches": store.breaches(None).await? })).into_response(),
            Endpoint::Draft => {
                let (Some(id), Some(report)) = (path_id(&req), path_name(&req)) else {
                    return Ok(ApiError::NotFound("no such draft".into()).into_response());
                };
                let Some(doc) = draft(&state, id, &report).await? else {
                    return Ok(ApiError::NotFound(format!("no incident #{id} or no report {report} ({})", crate::rules::compliance::DRAFTS.join(", "))).into_response());
                };
                let q: DraftQuery = match query(&req) {
                    Ok(q) => q,
                    Err(e) => return Ok(e.into_response()),
                };
                match q.format.as_deref() {
                    Some("markdown" | "md") => (
                        [(axum::http::header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
                        crate::rules::compliance::markdown(&doc),
                    )
                        .into_response(),
                    None | Some("json") => Json(doc).into_response(),
                    Some(other) => ApiError::Invalid(format!("format `{other}`: json or markdown")).into_response(),
                }
            }
            Endpoint::Yearly => {
                let q: YearQuery = match query(&req) {
                    Ok(q) => q,
                    Err(e) => return Ok(e.into_response()),
                };
                let year = match q.year {
                    None => current_year(),
                    Some(y) if (2000..=2200).contains(&y) => y,
                    Some(_) => return Ok(ApiError::Invalid("year: 2000 to 2200".into()).into_response()),
                };
                Json(yearly(&state, year).await?).into_response()
            }
            Endpoint::UserAdd => return Ok(user_add(&state, &caller, req).await),
            Endpoint::UserSet => return Ok(user_set(&state, &caller, req).await),
            Endpoint::TokenCreate => return Ok(token_create(&state, &caller, req).await),
            Endpoint::TokenRevoke => {
                let Some(id) = path_id(&req) else { return Ok(ApiError::NotFound("no such token".into()).into_response()) };
                if store.revoke_token(&caller.who, id, crate::now_ms()).await? {
                    Json(json!({ "message": format!("token #{id} revoked") })).into_response()
                } else {
                    ApiError::NotFound(format!("no active token #{id}")).into_response()
                }
            }
        })
    }
    .await;
    result.unwrap_or_else(|e| ApiError::from(e).into_response())
}

fn me(caller: &Caller) -> Value {
    let perms: Vec<&str> =
        crate::auth::Perm::ALL.into_iter().filter(|p| caller.may(*p)).map(crate::auth::Perm::as_str).collect();
    json!({ "user": caller.who.name, "role": caller.role.as_str(), "permissions": perms,
            "via": match caller.via { super::Via::Session { .. } => "session", super::Via::Token { .. } => "token" } })
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct UserBody {
    name: Option<String>,
    role: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
}

async fn user_add(state: &AppState, caller: &Caller, req: Request) -> Response {
    let body: UserBody = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let (Some(name), Some(password)) = (body.name, body.password) else {
        return ApiError::Invalid("`name` and `password` are required".into()).into_response();
    };
    let role: Role = match body.role.as_deref().unwrap_or("viewer").parse() {
        Ok(r) => r,
        Err(m) => return ApiError::Invalid(m).into_response(),
    };
    if let Err(m) = auth::check_password(&password).and_then(|()| auth::check_user_name(&name)) {
        return ApiError::Invalid(m).into_response();
    }
    match crate::actions::accounts::add_user_bounded(&state.store, &state.hashing, &caller.who, &name, role, password)
        .await
    {
        Ok(true) => {
            (StatusCode::CREATED, Json(json!({ "message": format!("user {name} added ({role})") }))).into_response()
        }
        Ok(false) => ApiError::Conflict(format!("user {name} exists")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

async fn user_set(state: &AppState, caller: &Caller, req: Request) -> Response {
    let Some(name) = path_name(&req) else { return ApiError::NotFound("no such user".into()).into_response() };
    let body: UserBody = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    if body.name.is_some() {
        return ApiError::Invalid("a user cannot be renamed".into()).into_response();
    }
    let role = match body.role.as_deref().map(str::parse::<Role>).transpose() {
        Ok(r) => r,
        Err(m) => return ApiError::Invalid(m).into_response(),
    };
    let phc = match body.password {
        Some(p) => {
            if let Err(m) = auth::check_password(&p) {
                return ApiError::Invalid(m).into_response();
            }
            match crate::actions::accounts::hash_bounded(&state.hashing, p).await {
                Ok(h) => Some(h),
                Err(e) => return ApiError::from(e).into_response(),
            }
        }
        None => None,
    };
    if role.is_none() && phc.is_none() && body.disabled.is_none() {
        return ApiError::Invalid("nothing to change: role, password or disabled".into()).into_response();
    }
    match state.store.update_user(&caller.who, &name, role, phc.as_deref(), body.disabled, crate::now_ms()).await {
        Ok(true) => Json(json!({ "message": format!("user {name} changed") })).into_response(),
        Ok(false) => ApiError::NotFound(format!("no user {name}")).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TokenBody {
    pub user: Option<String>,
    pub name: Option<String>,
    pub scopes: Option<String>,
    /// humantime, e.g. "90d".
    pub expires: Option<String>,
    /// The web form's CSRF field (the guard checks it).
    #[allow(dead_code)]
    pub csrf: Option<String>,
}

/// Create a token from a body: (id, token) or a message for a 400.
pub(super) async fn create_token(
    state: &AppState,
    caller: &Caller,
    body: TokenBody,
) -> Result<(i64, String), AccountError> {
    let user = body.user.unwrap_or_else(|| caller.who.name.clone());
    let lifetime = humantime::parse_duration(body.expires.as_deref().unwrap_or("90d"))
        .map_err(|e| AccountError::Invalid(format!("expires: {e}")))?;
    crate::actions::accounts::create_token(
        &state.store,
        &caller.who,
        &user,
        body.name.as_deref().unwrap_or(""),
        body.scopes.as_deref().unwrap_or("read"),
        lifetime,
    )
    .await
}

async fn token_create(state: &AppState, caller: &Caller, req: Request) -> Response {
    let body: TokenBody = match json_body(req).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    match create_token(state, caller, body).await {
        Ok((id, token)) => (StatusCode::CREATED, Json(json!({ "id": id, "token": token }))).into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// The current UTC year.
pub(super) fn current_year() -> i32 {
    time::OffsetDateTime::from_unix_timestamp(crate::now_ms() / 1000).map_or(2026, |t| t.year())
}

/// Start of a UTC year, in ms.
fn year_start(year: i32) -> i64 {
    time::Date::from_calendar_date(year, time::Month::January, 1)
        .map_or(0, |d| d.midnight().assume_utc().unix_timestamp() * 1000)
}

/// The yearly report from the store.
pub(super) async fn yearly(state: &AppState, year: i32) -> Result<Value, StoreError> {
    let (from, until) = (year_start(year), year_start(year + 1));
    let store = &state.store;
    let incidents = store.incident_times(from, until).await?;
    let days = store.component_days(&format!("{year}-01-01")).await?;
    let filed = store.reports_filed(from, until).await?;
    let overdue = store.overdue_actions(crate::now_ms()).await?;
    Ok(crate::rules::compliance::yearly(year, &incidents, &days, &filed, overdue))
}

/// A report draft for an incident, or None (no incident, or no such report).
pub(super) async fn draft(state: &AppState, id: i64, report: &str) -> Result<Option<Value>, StoreError> {
    let store = &state.store;
    let Some(incident) = store.incident(id).await? else { return Ok(None) };
    let breach = store.breaches(Some(id)).await?.into_iter().next();
    let postmortem = store.postmortem(id).await?;
    let actions = store.actions(id).await?;
    let updates = store.public_updates(id).await?;
    let sources = crate::rules::compliance::Sources {
        incident: &incident,
        breach: breach.as_ref(),
        postmortem: postmortem.as_ref(),
        actions: &actions,
        updates: &updates,
        now: crate::now_ms(),
    };
    Ok(crate::rules::compliance::draft(report, &sources))
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct CustomerBody {
    name: Option<String>,
    lang: Option<String>,
    #[serde(default)]
    contacts: Vec<String>,
    #[serde(default)]
    components: Vec<String>,
    #[serde(default)]
    agents: Vec<String>,
}

/// Validate and add a customer: Ok(id) or (status, message).
pub(super) async fn add_customer(
    state: &AppState,
    caller: &Caller,
    name: &str,
    lang: &str,
    contacts: &[String],
    components: &[String],
    agents: &[String],
) -> Result<i64, ApiError> {
    let bad = ApiError::Invalid;
    if name.trim().is_empty() || name.chars().count() > 200 {
        return Err(bad("a customer name is 1 to 200 characters".into()));
    }
    if lang != "sv" && lang != "en" {
        return Err(bad(format!("language `{lang}`: sv or en")));
    }
    if contacts.is_empty() || contacts.len() > 50 {
        return Err(bad("a customer needs 1 to 50 contact addresses".into()));
    }
    for c in contacts {
        crate::rules::words::check_email(c).map_err(bad)?;
    }
    let policy = state.policy.current();
    let known: Vec<&str> = policy.components().iter().map(|c| c.name.as_str()).collect();
    if let Some(unknown) = components.iter().find(|c| !known.contains(&c.as_str())) {
        return Err(bad(format!("no component `{unknown}` in the configuration")));
    }
    let uses: Vec<(String, String)> = components
        .iter()
        .map(|c| ("component".to_string(), c.clone()))
        .chain(agents.iter().map(|a| ("agent".to_string(), a.clone())))
        .collect();
    match state.store.add_customer(&caller.who, name.trim(), lang, contacts, &uses, crate::now_ms()).await {
        Ok(Some(id)) => Ok(id),
        Ok(None) => Err(ApiError::Conflict(format!("customer {name} exists"))),
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct WindowBody {
    pub kind: Option<String>,
    pub reason: Option<String>,
    #[serde(default)]
    pub components: Vec<String>,
    pub agents: Option<String>,
    pub checks: Option<String>,
    pub start: Option<String>,
    pub end: Option<String>,
    /// The web form's CSRF field (the guard checks it).
    #[allow(dead_code)]
    pub csrf: Option<String>,
}

/// Reload the runtime windows into the policy and refresh the public snapshot.
pub(super) async fn reload_windows(state: &AppState) -> Result<(), StoreError> {
    let windows = state.store.windows(crate::now_ms() - crate::http::public::status::HISTORY_MS).await?;
    state.policy.current().set_windows(&windows);
    state.changed();
    Ok(())
}

pub(super) async fn add_window(state: &AppState, caller: &Caller, b: WindowBody) -> Result<i64, ApiError> {
    let bad = ApiError::Invalid;
    let kind = b.kind.unwrap_or_default();
    if kind != "maintenance" && kind != "silence" {
        return Err(bad(format!("kind `{kind}`: maintenance or silence")));
    }
    let reason = b.reason.unwrap_or_default();
    if reason.trim().is_empty() || reason.chars().count() > 500 {
        return Err(bad("a reason is 1 to 500 characters".into()));
    }
    let time = |t: Option<String>, what: &str| {
        crate::actions::change::parse_time(&t.unwrap_or_default()).map_err(|e| bad(format!("{what}: {e}")))
    };
    let (start, end) = (time(b.start, "start")?, time(b.end, "end")?);
    if end <= start {
        return Err(bad("`end` must be after `start`".into()));
    }
    if end - start > 31 * 86_400_000 {
        return Err(bad("a window lasts at most 31 days".into()));
    }
    let policy = state.policy.current();
    let known: Vec<&str> = policy.components().iter().map(|c| c.name.as_str()).collect();
    if let Some(unknown) = b.components.iter().find(|c| !known.contains(&c.as_str())) {
        return Err(bad(format!("no component `{unknown}`")));
    }
    if kind == "maintenance" && b.components.is_empty() {
        return Err(bad("a maintenance window names the components it affects".into()));
    }
    let globs = [&b.agents, &b.checks];
    if globs.iter().any(|g| g.as_ref().is_some_and(|g| g.is_empty() || g.len() > 200)) {
        return Err(bad("agents and checks are globs of 1 to 200 characters".into()));
    }
    let window = crate::rules::policy::Window {
        id: 0,
        kind,
        reason: reason.trim().to_string(),
        components: b.components,
        agents: b.agents,
        checks: b.checks,
        start,
        end,
        created_by: caller.who.name.clone(),
        created: crate::now_ms(),
    };
    let id = state.store.add_window(&caller.who, &window, window.created).await?;
    reload_windows(state).await?;
    Ok(id)
}

pub(super) async fn cancel_window(state: &AppState, caller: &Caller, id: i64) -> Result<bool, StoreError> {
    let done = state.store.cancel_window(&caller.who, id, crate::now_ms()).await?;
    reload_windows(state).await?;
    Ok(done)
}
