//! `/api/v1/openapi.json`: the OpenAPI 3.1 document, generated from [`super::ROUTES`] (so it
//! lists exactly the routes the router serves, each with the permission it needs).

use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use super::{Handler, ROUTES};

fn string(description: &str) -> Value {
    json!({ "type": "string", "description": description })
}

/// The request body of an API route, if it takes one.
fn body(handler: Handler) -> Option<(Vec<&'static str>, Value)> {
    let (required, props): (Vec<&str>, Value) = match handler {
        Handler::ApiChange("acknowledge" | "escalate" | "resolve" | "reopen" | "done") => return None,
        Handler::ApiChange("severity") => (vec!["severity"], json!({ "severity": string("critical, major or minor") })),
        Handler::ApiChange("assign") => (vec!["assignee"], json!({ "assignee": string("who takes it") })),
        Handler::ApiChange("notes") => (vec!["text"], json!({ "text": string("internal note, ≤ 10,000 characters") })),
        Handler::ApiChange("updates") => (
            vec!["status", "text"],
            json!({ "status": string("investigating, identified, monitoring or resolved"), "text": string("what the public reads, ≤ 5,000 characters") }),
        ),
        Handler::ApiChange("classify") => (
            vec!["classification"],
            json!({ "classification": string("operational, security, personal-data-breach or nis2-significant"),
                    "aware_at": string("RFC 3339: when the organisation became aware (default now)") }),
        ),
        Handler::ApiChange("reports") => (
            vec!["report"],
            json!({ "report": string("gdpr-art33, nis2-early-warning, nis2-notification or nis2-final"),
                    "reference": string("the authority's reference") }),
        ),
        Handler::ApiChange("actions") => (
            vec!["owner", "due", "text"],
            json!({ "owner": string("who does it"), "due": string("RFC 3339 or a date"), "text": string("what to do") }),
        ),
        Handler::ApiChange("responders") => {
            (vec!["target"], json!({ "target": string("team:NAME, person:NAME or oncall:TEAM (from collector.toml)") }))
        }
        Handler::ApiChange("postmortem") => (
            vec![],
            json!({ "summary": string("what happened"), "cause": string("root cause"), "impact": string("who and what was affected"),
                    "lessons": string("lessons learned"), "follow_up": string("open, in-progress or closed") }),
        ),
        Handler::ApiChange("breach") => (
            vec![],
            json!({ "nature": string("nature of the breach"), "subject_categories": string("categories of data subjects"),
                    "subjects_approx": { "type": "integer", "description": "approximate number of data subjects" },
                    "record_categories": string("categories of personal data records"),
                    "records_approx": { "type": "integer", "description": "approximate number of records" },
                    "consequences": string("likely consequences"), "measures": string("measures taken or proposed"),
                    "contact": string("contact point (e.g. the DPO)"), "not_reported_reason": string("why it is not reported, if not") }),
        ),
        Handler::ApiChange("communicate") => (
            vec!["status", "text"],
            json!({ "status": string("investigating, identified, monitoring or resolved"), "text": string("the message"),
                    "public": { "type": "boolean", "description": "publish on the status page even when few customers are affected" } }),
        ),
        Handler::ApiChange("customers") => (
            vec!["customer"],
            json!({ "customer": string("customer name"), "included": { "type": "boolean", "description": "true (default) counts in, false out" } }),
        ),
        Handler::Api("customer_add") => (
            vec!["name", "contacts"],
            json!({ "name": string("customer name"), "lang": string("sv or en (default)"),
                    "contacts": { "type": "array", "items": { "type": "string" }, "description": "e-mail addresses" },
                    "components": { "type": "array", "items": { "type": "string" } },
                    "agents": { "type": "array", "items": { "type": "string" } } }),
        ),
        Handler::ApiChange("open" | "ticket") => (
            vec!["title"],
            json!({ "title": string("1-200 characters"), "severity": string("critical (pages), major (default) or minor"),
                    "components": { "type": "array", "items": { "type": "string" }, "description": "affected components" } }),
        ),
        Handler::Api("window_add") => (
            vec!["kind", "reason", "start", "end"],
            json!({ "kind": string("maintenance or silence"), "reason": string("shown on the status page for maintenance"),
                    "components": { "type": "array", "items": { "type": "string" } },
                    "agents": string("glob of agents to mute"), "checks": string("glob of checks to mute"),
                    "start": string("RFC 3339"), "end": string("RFC 3339") }),
        ),
        Handler::Api("user_add") => (
            vec!["name", "password"],
            json!({ "name": string("1-64 of letters, digits, . _ - @"), "role": string("viewer (default), technician or admin"),
                    "password": string("≥ 12 characters") }),
        ),
        Handler::Api("user_set") => (
            vec![],
            json!({ "role": string("viewer, technician or admin"), "password": string("≥ 12 characters; ends sessions, revokes tokens"),
                    "disabled": { "type": "boolean" } }),
        ),
        Handler::Api("token_create") => (
            vec!["name"],
            json!({ "user": string("owner (default: the caller)"), "name": string("what it is for"),
                    "scopes": string("comma-separated: read, triage, intake, admin (default read)"),
                    "expires": string("lifetime, e.g. 90d (default), at most 400d") }),
        ),
        _ => return None,
    };
    Some((required, props))
}

/// The document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES.iter().filter(|r| r.path.starts_with("/api/")) {
        let mut op = json!({
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
        entry[route.method.to_lowercase()] = op;
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
