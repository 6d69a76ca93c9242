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
            json!({ "status": string("investigating, identified, monitoring or resolved"), "text": string("what the public reads, ≤ 5,000 characters") }),
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
                "200": { "description": "OK", "content": { "application/json": {} } },
                "400": { "description": "Invalid request body or parameters" },
                "401": { "description": "Not signed in, or a bad, expired or revoked token" },
                "403": { "description": format!("The caller lacks permission `{}` (or the CSRF token is wrong)", route.perm.as_str()) },
                "404": { "description": "No such object" },
            },
        });
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
        "components": { "securitySchemes": {
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
