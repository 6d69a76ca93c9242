//! `/api/v1/openapi.json`: the OpenAPI 3.1 document, generated from [`super::ROUTES`] (so it
//! lists exactly the routes the router serves, each with the permission it needs).

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::api::Endpoint;
use super::{Handler, ROUTES};
use crate::actions::change::Kind;

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// The request body of an API route, if it takes one.
fn body(handler: Handler) -> Option<(Vec<&'static str>, Value)> {
    let (required, props): (Vec<&str>, Value) = match handler {
        Handler::ApiChange(Kind::Acknowledge | Kind::Escalate | Kind::Resolve | Kind::Reopen | Kind::Done) => {
            return None;
        }
        Handler::ApiChange(Kind::Severity) => {
            (vec!["severity"], json!({ "severity": string("critical, major or minor") }))
        }
        Handler::ApiChange(Kind::Assign) => (vec!["assignee"], json!({ "assignee": string("who takes it") })),
        Handler::ApiChange(Kind::Notes) => {
            (vec!["text"], json!({ "text": string("internal note, ≤ 10,000 characters") }))
        }
        Handler::ApiChange(Kind::Updates) => (
            vec!["status", "text"],
            json!({ "status": string("investigating, identified, monitoring or resolved"), "text": string("what the public reads, ≤ 5,000 characters"),
                    "resolve": { "type": "boolean", "description": "with `resolved`: resolve the incident too (default false)" } }),
        ),
        Handler::ApiChange(Kind::Classify) => (
            vec!["classification"],
            json!({ "classification": string("operational, security, personal-data-breach or nis2-significant"),
                    "aware_at": string("RFC 3339: when the organisation became aware (default now)") }),
        ),
        Handler::ApiChange(Kind::Reports) => (
            vec!["report"],
            json!({ "report": string("gdpr-art33, nis2-early-warning, nis2-notification or nis2-final"),
                    "reference": string("the authority's reference") }),
        ),
        Handler::ApiChange(Kind::Actions) => (
            vec!["owner", "due", "text"],
            json!({ "owner": string("who does it"), "due": string("RFC 3339 or a date"), "text": string("what to do") }),
        ),
        Handler::ApiChange(Kind::Responders) => {
            (vec!["target"], json!({ "target": string("team:NAME, person:NAME or oncall:TEAM (from collector.toml)") }))
        }
        Handler::ApiChange(Kind::Postmortem) => (
            vec![],
            json!({ "summary": string("what happened"), "cause": string("root cause"), "impact": string("who and what was affected"),
                    "lessons": string("lessons learned"), "follow_up": string("open, in-progress or closed") }),
        ),
        Handler::ApiChange(Kind::Breach) => (
            vec![],
            json!({ "nature": string("nature of the breach"), "subject_categories": string("categories of data subjects"),
                    "subjects_approx": { "type": "integer", "description": "approximate number of data subjects" },
                    "record_categories": string("categories of personal data records"),
                    "records_approx": { "type": "integer", "description": "approximate number of records" },
                    "consequences": string("likely consequences"), "measures": string("measures taken or proposed"),
                    "contact": string("contact point (e.g. the DPO)"), "not_reported_reason": string("why it is not reported, if not") }),
        ),
        Handler::ApiChange(Kind::Communicate) => (
            vec!["status", "text"],
            json!({ "status": string("investigating, identified, monitoring or resolved"), "text": string("the message"),
                    "public": { "type": "boolean", "description": "publish on the status page even when few customers are affected" } }),
        ),
        Handler::ApiChange(Kind::Customers) => (
            vec!["customer"],
            json!({ "customer": string("customer name"), "included": { "type": "boolean", "description": "true (default) counts in, false out" } }),
        ),
        Handler::Api(Endpoint::CustomerAdd) => (
            vec!["name", "contacts"],
            json!({ "name": string("customer name"), "lang": string("sv or en (default)"),
                    "contacts": { "type": "array", "items": { "type": "string" }, "description": "e-mail addresses" },
                    "components": { "type": "array", "items": { "type": "string" } },
                    "agents": { "type": "array", "items": { "type": "string" } } }),
        ),
        Handler::ApiChange(Kind::Open | Kind::Ticket) => (
            vec!["title"],
            json!({ "title": string("1-200 characters"), "severity": string("critical (pages), major (default) or minor"),
                    "components": { "type": "array", "items": { "type": "string" }, "description": "affected components" } }),
        ),
        Handler::Api(Endpoint::WindowAdd) => (
            vec!["kind", "reason", "start", "end"],
            json!({ "kind": string("maintenance or silence"), "reason": string("shown on the status page for maintenance"),
                    "components": { "type": "array", "items": { "type": "string" } },
                    "agents": string("glob of agents to mute"), "checks": string("glob of checks to mute"),
                    "start": string("RFC 3339"), "end": string("RFC 3339") }),
        ),
        Handler::Api(Endpoint::UserAdd) => (
            vec!["name", "password"],
            json!({ "name": string("1-64 of letters, digits, . _ - @"), "role": string("viewer (default), technician or admin"),
                    "password": string("≥ 12 characters") }),
        ),
        Handler::Api(Endpoint::UserSet) => (
            vec![],
            json!({ "role": string("viewer, technician or admin"), "password": string("≥ 12 characters; ends sessions, revokes tokens"),
                    "disabled": { "type": "boolean" } }),
        ),
        Handler::Api(Endpoint::TokenCreate) => (
            vec!["name"],
            json!({ "user": string("owner (default: the caller)"), "name": string("what it is for"),
                    "scopes": string("comma-separated: read, triage, intake, admin (default read)"),
                    "expires": string("lifetime, e.g. 90d (default), at most 400d") }),
        ),
        _ => return None,
    };
    Some((required, props))
}

/// The query parameters of an API route: (name, required, schema, description).
fn query(handler: Handler) -> Vec<(&'static str, bool, Value, &'static str)> {
    let int = |min: i64, max: i64| json!({ "type": "integer", "minimum": min, "maximum": max });
    let text = json!({ "type": "string" });
    match handler {
        Handler::Api(Endpoint::Incidents) => {
            vec![("state", false, json!({ "type": "string", "enum": ["open", "all"] }), "open (default) or all")]
        }
        Handler::Api(Endpoint::CheckHistory) => vec![
            ("agent", true, text.clone(), "agent id"),
            ("check", true, text, "check name"),
            ("limit", false, int(1, 500), "newest results to return (default 100)"),
        ],
        Handler::Api(Endpoint::Audit) => vec![
            ("after", false, int(0, i64::MAX), "records after this seq (default 0)"),
            ("limit", false, int(1, 1000), "records to return (default 100)"),
        ],
        Handler::Api(Endpoint::Draft) => {
            vec![(
                "format",
                false,
                json!({ "type": "string", "enum": ["json", "markdown", "md"] }),
                "json (default) or markdown",
            )]
        }
        Handler::Api(Endpoint::Yearly) => vec![("year", false, int(2000, 2200), "calendar year (default this one)")],
        _ => vec![],
    }
}

fn schema_ref(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

/// `{ key: [item…] }`, the shape of every list the API answers with.
fn list_of(key: &str, item: Value) -> Value {
    json!({ "type": "object", "required": [key], "properties": { key: { "type": "array", "items": item } } })
}

/// A row the API passes through from the store: every column always present and no other,
/// so a column added, renamed or dropped in the code fails the schema test until it is
/// written down here. `(name, schema)` per column.
fn row(columns: &[(&str, Value)]) -> Value {
    let names: Vec<&str> = columns.iter().map(|(n, _)| *n).collect();
    let props: Map<String, Value> = columns.iter().map(|(n, v)| ((*n).to_string(), v.clone())).collect();
    json!({ "type": "object", "additionalProperties": false, "required": names, "properties": props })
}

/// The row schemas, one per list the API serves.
fn row_schemas() -> Map<String, Value> {
    let text = || json!({ "type": "string" });
    let int = || json!({ "type": "integer" });
    let maybe_int = || json!({ "type": ["integer", "null"] });
    let maybe_text = || json!({ "type": ["string", "null"] });
    let ms = |what: &str| json!({ "type": "integer", "description": format!("{what}, milliseconds since 1970 UTC") });
    let maybe_ms = |what: &str| json!({ "type": ["integer", "null"], "description": format!("{what}, milliseconds since 1970 UTC") });
    let texts = || json!({ "type": "array", "items": { "type": "string" } });
    let severity = || json!({ "type": "string", "enum": ["critical", "major", "minor"] });
    let mut m = Map::new();
    m.insert("AuditRecord".into(), row(&[
        ("seq", int()), ("ts_ms", ms("when")), ("actor", text()), ("role", text()), ("action", text()),
        ("object", text()), ("before_digest", text()), ("after_digest", text()),
        ("outcome", json!({ "type": "string", "description": "ok, unchanged, denied, refused, …" })), ("source", text()),
        ("request_id", text()), ("detail", text()), ("prev_hash", text()), ("hash", text()),
        ("mac", json!({ "type": ["string", "null"], "description": "HMAC of hash with the audit key; null before the key existed" })),
    ]));
    m.insert(
        "User".into(),
        row(&[
            ("name", text()),
            ("role", json!({ "type": "string", "enum": ["viewer", "technician", "admin"] })),
            ("disabled", json!({ "type": "boolean" })),
        ]),
    );
    m.insert(
        "Enrollment".into(),
        row(&[
            ("id", int()),
            ("agents", text()),
            ("max_uses", json!({ "type": ["integer", "null"] })),
            ("uses", int()),
            ("created_by", text()),
            ("created_ms", ms("made")),
            ("expires_ms", ms("expires")),
            ("revoked_ms", maybe_ms("revoked")),
            ("state", json!({ "type": "string", "enum": ["active", "expired", "used up", "revoked"] })),
        ]),
    );
    m.insert(
        "EnrolledAgent".into(),
        row(&[
            ("agent", text()),
            ("enrollment", int()),
            ("enrolled_ms", ms("enrolled")),
            ("renewed_ms", maybe_ms("renewed last")),
            ("serial", text()),
            ("not_after_ms", ms("certificate ends")),
            ("revoked_ms", maybe_ms("revoked")),
            ("revoked_by", json!({ "type": ["string", "null"] })),
            ("version", json!({ "type": ["string", "null"] })),
        ]),
    );
    m.insert("Token".into(), row(&[
        ("id", int()), ("user", text()), ("name", text()),
        ("scopes", json!({ "type": "array", "items": { "type": "string", "enum": ["read", "triage", "intake", "admin"] } })),
        ("created_ms", ms("made")), ("expires_ms", ms("expires")), ("last_used_ms", maybe_ms("last used")),
        ("revoked_ms", maybe_ms("revoked")),
    ]));
    m.insert(
        "Deviation".into(),
        row(&[
            ("incident_id", int()),
            ("title", text()),
            ("severity", severity()),
            ("classification", text()),
            ("incident_state", json!({ "type": "string", "enum": ["triggered", "acknowledged", "resolved"] })),
            ("opened_ms", ms("opened")),
            ("follow_up", text()),
            ("cause", text()),
            ("actions_open", int()),
            ("actions_overdue", int()),
            ("updated_ms", ms("postmortem last edited")),
        ]),
    );
    m.insert(
        "Breach".into(),
        row(&[
            ("incident_id", int()),
            ("title", text()),
            ("aware_at_ms", maybe_ms("aware since")),
            ("opened_ms", ms("opened")),
            ("nature", text()),
            ("subject_categories", text()),
            ("subjects_approx", maybe_int()),
            ("record_categories", text()),
            ("records_approx", maybe_int()),
            ("consequences", text()),
            ("measures", text()),
            ("contact", text()),
            ("not_reported_reason", text()),
            ("reported_ms", maybe_ms("Art. 33 report filed")),
            ("reference", maybe_text()),
        ]),
    );
    m.insert("Customer".into(), row(&[
        ("id", int()), ("name", text()), ("lang", json!({ "type": "string", "enum": ["sv", "en"] })), ("contacts", texts()),
        ("uses", json!({ "type": "array", "description": "[kind, name]: kind is component or agent",
            "items": { "type": "array", "prefixItems": [{ "type": "string", "enum": ["component", "agent"] }, { "type": "string" }],
                       "minItems": 2, "maxItems": 2 } })),
    ]));
    m.insert(
        "Window".into(),
        row(&[
            ("id", int()),
            ("kind", json!({ "type": "string", "enum": ["maintenance", "silence"] })),
            ("reason", text()),
            ("components", texts()),
            ("agents", maybe_text()),
            ("checks", maybe_text()),
            ("start", ms("starts")),
            ("end", ms("ends")),
            ("created_by", text()),
            ("created", ms("made")),
        ]),
    );
    m.insert(
        "Subscriber".into(),
        row(&[
            ("id", int()),
            ("email", text()),
            ("lang", text()),
            ("components", texts()),
            ("confirmed", json!({ "type": "boolean" })),
        ]),
    );
    let minutes = row(&[("count", int()), ("median_min", maybe_int()), ("mean_min", maybe_int())]);
    m.insert("YearlyReport".into(), row(&[
        ("year", int()),
        ("incidents", row(&[
            ("total", int()),
            ("by_severity", row(&[("critical", int()), ("major", int()), ("minor", int())])),
            ("by_month", json!({ "type": "array", "items": { "type": "integer" }, "minItems": 12, "maxItems": 12 })),
        ])),
        ("time_to_acknowledge", minutes.clone()),
        ("time_to_resolve", minutes),
        ("uptime_percent", json!({ "type": "array", "items": row(&[("component", text()), ("uptime", json!({ "type": ["number", "null"] }))]) })),
        ("reports_filed", json!({ "type": "array", "items": row(&[("report", text()), ("count", int())]) })),
        ("overdue_actions", int()),
    ]));
    m.insert("Draft".into(), json!({
        "type": "object", "required": ["report", "incident", "missing", "drafted_at"],
        "description": "A regulatory report's draft; the fields after these depend on the report",
        "properties": {
            "report": text(), "deadline": json!({ "type": "string", "format": "date-time" }),
            "incident": row(&[
                ("incident", int()), ("title", text()), ("classification", text()), ("severity", severity()),
                ("detected_at", json!({ "type": "string", "format": "date-time" })),
                ("aware_at", json!({ "type": "string", "format": "date-time" })),
                ("state", json!({ "type": "string", "enum": ["triggered", "acknowledged", "resolved"] })),
                ("resolved_at", json!({ "type": ["string", "null"], "format": "date-time" })),
            ]),
            "missing": json!({ "type": "array", "items": { "type": "string" }, "description": "fields still to fill in" }),
            "drafted_at": json!({ "type": "string", "format": "date-time" }),
        } }));
    m
}

/// The schemas the responses name.
fn schemas() -> Value {
    let text = json!({ "type": "string" });
    let maybe = json!({ "type": ["string", "null"] });
    let time = json!({ "type": "string", "format": "date-time" });
    let maybe_time = json!({ "type": ["string", "null"], "format": "date-time" });
    let mut all = json!({
        "Error": { "type": "object", "required": ["error"], "properties": {
            "error": string("what was wrong"), "request_id": string("the audit trail's request id, when the guard refused") } },
        "Applied": { "type": "object", "required": ["message"], "properties": {
            "message": string("what was done"), "id": { "type": "integer", "description": "the new object's id, when one was made" } } },
        "Created": { "type": "object", "required": ["id"], "properties": { "id": { "type": "integer" } } },
        "Message": { "type": "object", "required": ["message"], "properties": { "message": text } },
        "Incident": { "type": "object", "required": ["id", "title", "state", "severity", "urgency", "source", "created_at"], "properties": {
            "id": { "type": "integer" }, "title": text, "summary": text,
            "state": { "type": "string", "enum": ["triggered", "acknowledged", "resolved"] },
            "severity": { "type": "string", "enum": ["critical", "major", "minor"] },
            "urgency": { "type": "string", "enum": ["page", "notify"] },
            "source": { "type": "string", "enum": ["check", "agent_down", "manual", "ticket"] },
            "agent": maybe, "check": maybe, "assignee": maybe, "classification": text, "runbook": maybe, "team": maybe,
            "created_at": time, "acked_by": maybe, "public": { "type": "boolean" }, "aware_at": maybe_time, "resolved_at": maybe_time } },
        "IncidentDetail": { "allOf": [schema_ref("Incident"), { "type": "object", "properties": {
            "timeline": { "type": "array", "items": { "type": "object", "properties": {
                "at": time, "actor": text, "kind": text, "text": text } } },
            "alerts": { "type": "array", "items": schema_ref("Alert") },
            "notifications": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "integer" }, "kind": text, "recipient": text, "state": text, "attempts": { "type": "integer" } } } },
            "actions": { "type": "array", "items": { "type": "object", "properties": {
                "id": { "type": "integer" }, "text": text, "owner": text, "due": time, "done": { "type": "boolean" } } } },
            "clocks": { "type": "array", "items": { "type": "object", "properties": { "report": text, "due": time } } } } }] },
        "Alert": { "type": "object", "required": ["agent", "check", "active"], "properties": {
            "agent": text, "check": string("empty for the host itself"), "active": { "type": "boolean" } } },
        "Agent": { "type": "object", "required": ["agent", "online"], "properties": {
            "agent": text, "online": { "type": "boolean" }, "epoch": { "type": "integer" },
            "contiguous": { "type": "integer" }, "lost": { "type": "integer" },
            "config_error": { "type": ["string", "null"], "description": "why the agent did not apply its config file on its last reload; null while it runs the file's config" },
            "enrolled": { "oneOf": [{ "type": "null" }, schema_ref("EnrolledAgent")], "description": "the agent's identity when it enrolled with a token; null otherwise" } } },
        "CheckState": { "type": "object", "required": ["agent", "check", "status"], "properties": {
            "agent": text, "check": text, "status": { "type": "string", "enum": ["ok", "warning", "critical", "unknown"] },
            "summary": text, "seq": { "type": "integer" } } },
        "Me": { "type": "object", "required": ["user", "role", "permissions", "via"], "properties": {
            "user": text, "role": { "type": "string", "enum": ["viewer", "technician", "admin"] },
            "permissions": { "type": "array", "items": { "type": "string", "enum": ["read", "triage", "intake", "admin"] } },
            "via": { "type": "string", "enum": ["session", "token"] } } },
    });
    if let Some(map) = all.as_object_mut() {
        map.extend(row_schemas());
    }
    all
}

/// What a successful call answers: (status, schema).
fn response(handler: Handler) -> (&'static str, Value) {
    match handler {
        Handler::ApiChange(Kind::Open | Kind::Ticket | Kind::Actions) => ("201", schema_ref("Applied")),
        Handler::ApiChange(_) | Handler::UiChange(_) => ("200", schema_ref("Applied")),
        Handler::Api(Endpoint::Me) => ("200", schema_ref("Me")),
        Handler::Api(Endpoint::Incidents) => ("200", list_of("incidents", schema_ref("Incident"))),
        Handler::Api(Endpoint::Incident) => ("200", schema_ref("IncidentDetail")),
        Handler::Api(Endpoint::Agents) => ("200", list_of("agents", schema_ref("Agent"))),
        Handler::Api(Endpoint::Checks) => ("200", list_of("checks", schema_ref("CheckState"))),
        Handler::Api(Endpoint::CheckHistory) => (
            "200",
            json!({ "type": "object", "required": ["agent", "check", "results"], "properties": {
            "agent": { "type": "string" }, "check": { "type": "string" },
            "results": { "type": "array", "items": { "type": "object", "properties": {
                "at": { "type": "string", "format": "date-time" }, "status": { "type": "string" }, "summary": { "type": "string" },
                "duration_ms": { "type": "integer" }, "metrics": {} } } } } }),
        ),
        Handler::Api(Endpoint::Audit) => ("200", list_of("records", schema_ref("AuditRecord"))),
        Handler::Api(Endpoint::Users) => ("200", list_of("users", schema_ref("User"))),
        Handler::Api(Endpoint::Tokens) => ("200", list_of("tokens", schema_ref("Token"))),
        Handler::Api(Endpoint::Enrollments) => ("200", list_of("enrollments", schema_ref("Enrollment"))),
        Handler::Api(Endpoint::Deviations) => ("200", list_of("deviations", schema_ref("Deviation"))),
        Handler::Api(Endpoint::Customers | Endpoint::IncidentCustomers) => {
            ("200", list_of("customers", schema_ref("Customer")))
        }
        Handler::Api(Endpoint::Windows) => ("200", list_of("windows", schema_ref("Window"))),
        Handler::Api(Endpoint::Subscribers) => ("200", list_of("subscribers", schema_ref("Subscriber"))),
        Handler::Api(Endpoint::Breaches) => ("200", list_of("breaches", schema_ref("Breach"))),
        Handler::Api(Endpoint::Draft) => ("200", schema_ref("Draft")),
        Handler::Api(Endpoint::Yearly) => ("200", schema_ref("YearlyReport")),
        Handler::Api(Endpoint::WindowAdd | Endpoint::CustomerAdd | Endpoint::UserAdd) => ("201", schema_ref("Created")),
        Handler::Api(Endpoint::TokenCreate) => (
            "201",
            json!({ "type": "object", "required": ["id", "token"], "properties": {
            "id": { "type": "integer" }, "token": { "type": "string", "description": "shown once; store it now" } } }),
        ),
        Handler::Api(Endpoint::UserSet | Endpoint::WindowCancel | Endpoint::TokenRevoke | Endpoint::AgentRevoke) => {
            ("200", schema_ref("Message"))
        }
        // (Not in the document: only routes under /api/ are.)
        Handler::Ui(_) => ("200", json!({ "type": "string", "description": "an HTML page" })),
    }
}

/// A route's `operationId`: the handler's name, unique because each handler serves one route
/// (a change's name is prefixed with `change`).
fn operation_id(handler: Handler) -> String {
    let name = match handler {
        Handler::Api(endpoint) => format!("{endpoint:?}"),
        Handler::ApiChange(kind) | Handler::UiChange(kind) => format!("change{kind:?}"),
        Handler::Ui(page) => format!("page{page:?}"),
    };
    let mut chars = name.chars();
    chars.next().map(|c| c.to_ascii_lowercase().to_string() + chars.as_str()).unwrap_or_default()
}

fn error(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": schema_ref("Error") } } })
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES.iter().filter(|r| r.path.starts_with("/api/")) {
        let mut op = json!({
            "operationId": operation_id(route.handler),
            "summary": route.summary,
            "x-vakt-permission": route.perm,
            "security": [{ "bearer": [] }, { "session": [] }],
            "responses": {
                "400": error("Invalid request body or parameters"),
                "401": error("Not signed in, or a bad, expired or revoked token"),
                "403": error(&format!("The caller lacks permission `{}` (or the CSRF token is wrong)", route.perm.as_str())),
                "404": error("No such object"),
                "503": error("The store is unavailable"),
            },
        });
        let (status, schema) = response(route.handler);
        op["responses"][status] =
            json!({ "description": "OK", "content": { "application/json": { "schema": schema } } });
        let mut parameters = Vec::new();
        for name in ["id", "name"] {
            // (`name` is a report's name under /drafts/, a user's under /users/.)
            if route.path.contains(&format!("{{{name}}}")) {
                let schema = if name == "id" { json!({ "type": "integer" }) } else { json!({ "type": "string" }) };
                parameters.push(json!({ "name": name, "in": "path", "required": true, "schema": schema }));
            }
        }
        for (name, required, schema, description) in query(route.handler) {
            parameters.push(json!({ "name": name, "in": "query", "required": required, "schema": schema, "description": description }));
        }
        if !parameters.is_empty() {
            op["parameters"] = json!(parameters);
        }
        if let Some((required, props)) = body(route.handler) {
            op["requestBody"] = json!({
                "required": !required.is_empty(),
                "content": { "application/json": { "schema": {
                    "type": "object", "additionalProperties": false, "required": required, "properties": props } } }
            });
        }
        let entry = paths.entry(route.path.to_string()).or_insert_with(|| json!({}));
        entry[route.method.as_str().to_lowercase()] = op;
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Vakt collector operator API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Incidents, triage, registers, users and tokens. Every call needs a session or a bearer token \
                whose scopes and owner's role allow the route's permission (x-vakt-permission); every change and every \
                refusal is written to the hash-chained audit trail.",
        },
        "components": { "schemas": schemas(), "securitySchemes": {
            "bearer": { "type": "http", "scheme": "bearer", "description": "vakt_<id>_<secret>, from `vakt-collector token create`" },
            "session": { "type": "apiKey", "in": "cookie", "name": super::SESSION_COOKIE,
                         "description": "browser session; non-GET requests also need the X-CSRF-Token header" },
        } },
        "paths": paths,
    })
}

pub async fn serve() -> Response {
    axum::Json(document()).into_response()
}
