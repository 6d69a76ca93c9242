//! Status-page subscriptions (public, no login): double opt-in by e-mail, one-click-and-confirm
//! unsubscribe. Only the address, a language and the followed components are kept.

use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::{Markup, html};
use serde::Deserialize;

use crate::http::html::{layout, text};
use crate::http::state::AppState;
use crate::rules::words::Lang;

fn lang_of(query: Option<&str>, headers: &HeaderMap) -> Lang {
    Lang::pick(query, headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()))
}

fn page(lang: Lang, title: &str, body: Markup) -> Response {
    let back = if lang == Lang::Sv { "Till driftstatus" } else { "Back to the status page" };
    Html(crate::http::html::document(layout::form_page(lang.code(), title, back, body))).into_response()
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    lang: Option<String>,
    token: Option<String>,
}

pub async fn form(State(state): State<AppState>, Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let sv = lang == Lang::Sv;
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let body = html! {
        p {
            @if sv {
                "Få ett e-postmeddelande när en störning publiceras. Vi sparar bara adressen och vad du följer; varje meddelande har en länk för att avsluta."
            } @else {
                "Get an e-mail when an incident is published. We keep only the address and what you follow; every message has a link to stop."
            }
        }
        form method="post" action="/subscribe" {
            input type="hidden" name="lang" value=(lang.code());
            label for="email" { (if sv { "E-postadress" } else { "E-mail address" }) }
            input id="email" name="email" type="email" autocomplete="email" required;
            fieldset {
                legend { (if sv { "Komponenter (inga valda: alla)" } else { "Components (none chosen: all)" }) }
                @for c in &snapshot.components {
                    label { input type="checkbox" name="component" value=(c.name); " " (text(&c.title)) }
                }
            }
            button type="submit" { (if sv { "Prenumerera" } else { "Subscribe" }) }
        }
    };
    page(lang, if sv { "Prenumerera på driftstatus" } else { "Subscribe to status updates" }, body)
}

pub async fn submit(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<std::net::SocketAddr>,
    axum::Form(fields): axum::Form<Vec<(String, String)>>,
) -> Response {
    let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.trim().to_string()).unwrap_or_default();
    let lang = if get("lang") == "sv" { Lang::Sv } else { Lang::En };
    let sv = lang == Lang::Sv;
    let now = crate::now_ms();
    // At most a few subscriptions per source address per window: the form sends mail.
    if state.limiter.attempt_by_source("subscribe", addr.ip(), now).is_err() {
        let text =
            if sv { "För många försök; försök igen senare." } else { "Too many attempts; try again later." };
        return (StatusCode::TOO_MANY_REQUESTS, page(lang, text, html! {})).into_response();
    }
    let email = get("email");
    if let Err(m) = crate::rules::words::check_email(&email) {
        return (
            StatusCode::BAD_REQUEST,
            page(lang, if sv { "Felaktig adress" } else { "Bad address" }, html! { p { (m) } }),
        )
            .into_response();
    }
    let snapshot = state.status.read().map(|s| s.clone()).unwrap_or_default();
    let components: Vec<String> = fields.iter().filter(|(n, _)| n == "component").map(|(_, v)| v.clone()).collect();
    if let Some(unknown) = components.iter().find(|c| !snapshot.components.iter().any(|k| &k.name == *c)) {
        return (StatusCode::BAD_REQUEST, page(lang, "?", html! { p { "no component " (unknown) } })).into_response();
    }
    if let Err(e) = state.store.subscribe(&email, lang.code(), &components, &state.policy.current().public, now).await {
        tracing::error!(error = %e, "cannot add a subscriber");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    // The same answer whether or not the address was already subscribed (no probing).
    let text = if sv {
        "Tack. Vi har skickat ett e-postmeddelande med en länk; prenumerationen börjar när du följer den."
    } else {
        "Thank you. We sent an e-mail with a link; the subscription starts when you follow it."
    };
    page(lang, if sv { "Kolla din e-post" } else { "Check your e-mail" }, html! { p role="status" { (text) } })
}

/// GET shows a button (mail scanners follow links; only a person presses it).
fn token_form(action: &str, token: &str, lang: Lang, title: &str, button: &str) -> Response {
    let body = html! {
        form method="post" action=(action) {
            input type="hidden" name="token" value=(token);
            input type="hidden" name="lang" value=(lang.code());
            button type="submit" { (button) }
        }
    };
    page(lang, title, body)
}

pub async fn confirm_form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let sv = lang == Lang::Sv;
    token_form(
        "/subscribe/confirm",
        q.token.as_deref().unwrap_or(""),
        lang,
        if sv { "Bekräfta prenumerationen" } else { "Confirm your subscription" },
        if sv { "Bekräfta" } else { "Confirm" },
    )
}

pub async fn unsubscribe_form(Query(q): Query<LangQuery>, headers: HeaderMap) -> Response {
    let lang = lang_of(q.lang.as_deref(), &headers);
    let sv = lang == Lang::Sv;
    token_form(
        "/unsubscribe",
        q.token.as_deref().unwrap_or(""),
        lang,
        if sv { "Avsluta prenumerationen" } else { "Unsubscribe" },
        if sv { "Avsluta" } else { "Unsubscribe" },
    )
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    token: String,
    lang: Option<String>,
}

pub async fn confirm(State(state): State<AppState>, axum::Form(f): axum::Form<TokenForm>) -> Response {
    let lang = if f.lang.as_deref() == Some("sv") { Lang::Sv } else { Lang::En };
    let sv = lang == Lang::Sv;
    match state.store.confirm_subscriber(&f.token, crate::now_ms()).await {
        Ok(true) => page(lang, if sv { "Prenumerationen är bekräftad" } else { "Subscription confirmed" }, html! {}),
        Ok(false) => (StatusCode::NOT_FOUND, page(lang, if sv { "Okänd länk" } else { "Unknown link" }, html! {}))
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

pub async fn unsubscribe(State(state): State<AppState>, axum::Form(f): axum::Form<TokenForm>) -> Response {
    let lang = if f.lang.as_deref() == Some("sv") { Lang::Sv } else { Lang::En };
    let sv = lang == Lang::Sv;
    match state.store.unsubscribe(&f.token).await {
        Ok(true) => page(
            lang,
            if sv { "Prenumerationen är avslutad" } else { "Unsubscribed" },
            html! { p { (if sv { "Adressen är borttagen." } else { "The address is deleted." }) } },
        ),
        Ok(false) => (StatusCode::NOT_FOUND, page(lang, if sv { "Okänd länk" } else { "Unknown link" }, html! {}))
            .into_response(),
        Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}
