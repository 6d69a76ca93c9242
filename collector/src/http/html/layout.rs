//! The page frames: the operator UI's (navigation, who is signed in, sign-out form) and the
//! public side's (status page and subscription pages). Their style sheets are constants spliced
//! raw; everything else is escaped.

use maud::{DOCTYPE, Markup, PreEscaped, html};

const OPS_STYLE: &str = "body{font-family:system-ui,sans-serif;margin:0 auto;max-width:72rem;padding:1rem;color:#1a1a1a;line-height:1.45}\
a{color:#0645ad}nav{display:flex;gap:1rem;align-items:center;border-bottom:1px solid #ccc;padding-bottom:.5rem;flex-wrap:wrap}\
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.3rem .5rem;text-align:left;vertical-align:top}\
.sev-critical{color:#a00000;font-weight:bold}.sev-major{color:#8a4b00;font-weight:bold}form.inline{display:inline}\
fieldset{margin:.5rem 0;border:1px solid #ccc}label{display:inline-block;margin:.2rem .5rem .2rem 0}\
button{padding:.3rem .8rem;margin:.2rem 0}.msg{background:#eef6ee;border:1px solid #5a5;padding:.5rem}\
.err{background:#fbeaea;border:1px solid #a55;padding:.5rem}.overdue{color:#a00000;font-weight:bold}\
.st{font-weight:bold}.st-ok{color:#1b6b2f}.st-warning{color:#7a5600}.st-critical{color:#a00000}.st-unknown{color:#5b3f8c}\
.disagree{color:#a00000}time{white-space:nowrap}.table{overflow-x:auto}svg{max-width:100%;height:auto}\
textarea,input,select{max-width:100%;box-sizing:border-box}fieldset{min-width:0}code,p,li,dd{overflow-wrap:anywhere}\
@media(max-width:40rem){body{padding:.5rem}th,td{padding:.2rem .25rem;font-size:.9rem}}\
:focus{outline:3px solid #1a5fb4;outline-offset:2px}";

const STATUS_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:46rem;margin:0 auto;padding:1rem;color:#1a1a1a;background:#fff;line-height:1.5}
a{color:#0b4f9c} a:focus{outline:3px solid #1a1a1a;outline-offset:2px}
.banner{padding:1rem;border-radius:.3rem;font-weight:bold;font-size:1.2rem;border:2px solid}
.i-none{background:#e7f5ea;border-color:#1b6b2f} .i-minor{background:#fff6db;border-color:#8a6100}
.i-major{background:#ffe9d6;border-color:#9a4500} .i-critical{background:#fde5e5;border-color:#a11919}
.i-maintenance{background:#e6eefc;border-color:#23489a}
ul{list-style:none;padding:0} li{padding:.6rem 0;border-bottom:1px solid #ccc} .row{display:flex;justify-content:space-between;gap:1rem}
.bars{margin:.3rem 0} .axis{display:flex;justify-content:space-between;color:#555}
.s-operational{color:#1b6b2f} .s-degraded_performance{color:#7a5600} .s-partial_outage{color:#9a4500}
.s-major_outage{color:#a11919} .s-under_maintenance{color:#23489a} .status{font-weight:bold}
nav a[aria-current]{font-weight:bold;text-decoration:none;color:#1a1a1a}
.top{display:flex;justify-content:space-between;align-items:center;gap:1rem;flex-wrap:wrap}
h1{margin:.5rem 0;font-size:1.6rem} h1 .sub{font-weight:normal;color:#444;font-size:1.1rem}
.subscribe{border:2px solid #0b4f9c;border-radius:.3rem;padding:.3rem .8rem;text-decoration:none;font-weight:bold}
time{white-space:nowrap}";

const FORM_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:40rem;margin:0 auto;padding:1rem;line-height:1.5}\
label{display:block;margin:.5rem 0 .2rem}button{margin-top:.8rem;padding:.3rem .8rem}:focus{outline:3px solid #1a5fb4}";

/// Who is signed in, for the operator navigation.
#[derive(Debug, Clone, Copy)]
pub struct SignedIn<'a> {
    pub name: &'a str,
    pub role: &'a str,
    pub csrf: &'a str,
    /// Sees the audit trail and the users.
    pub admin: bool,
}

/// The one `<!DOCTYPE html>`, `<html lang>` and `<head>` every page shares: charset, viewport,
/// title, its style sheet (a constant of this file) and, for the operator UI, its script.
fn document(lang: &str, title: Markup, style: &'static str, script: Option<&'static str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang=(lang) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="icon" href="/favicon.ico";
                style { (PreEscaped(style)) }
                @if let Some(src) = script {
                    script src=(src) defer {}
                }
            }
            body { (body) }
        }
    }
}

/// An operator page: navigation when someone is signed in, the title as `<h1>`, the body.
pub fn ops_page(title: &str, who: Option<SignedIn<'_>>, body: Markup) -> Markup {
    let page = html! {
        @if let Some(w) = who {
            nav aria-label="Operator" {
                a href="/ops" { "Dashboard" }
                a href="/ops/agents" { "Agents" }
                a href="/ops/deviations" { "Deviations" }
                a href="/ops/breaches" { "Breaches" }
                a href="/ops/customers" { "Customers" }
                a href="/ops/windows" { "Maintenance" }
                a href="/ops/reports/yearly" { "Yearly report" }
                @if w.admin {
                    a href="/ops/audit" { "Audit trail" }
                    a href="/ops/users" { "Users and tokens" }
                }
                a href="/" { "Public status page" }
                span { "Signed in as " strong { (w.name) } " (" (w.role) ")" }
                form.inline method="post" action="/logout" {
                    input type="hidden" name="csrf" value=(w.csrf);
                    button type="submit" { "Sign out" }
                }
            }
        }
        main {
            h1 { (title) }
            (body)
        }
    };
    document("en", html! { (title) " · Vakt" }, OPS_STYLE, Some("/ops.js"), page)
}

/// What the public status page's frame says: whose page it is, in which language.
#[derive(Debug, Clone, Copy)]
pub struct StatusFrame<'a> {
    pub lang: &'a str,
    /// Whose services these are (`[public] organisation`).
    pub organisation: &'a str,
    /// "System status", in the page's language.
    pub title: &'a str,
    /// The language switch's label.
    pub language: &'a str,
    /// The subscribe link's words.
    pub subscribe: &'a str,
}

/// The public status page's frame: the organisation and the page's name, the subscribe link and
/// the language switch in the header, the body in `<main>`, the footer after it.
pub fn status_page(frame: &StatusFrame<'_>, body: Markup, footer: Markup) -> Markup {
    let lang = frame.lang;
    let page = html! {
        header {
            div.top {
                h1 { (frame.organisation) " " span.sub { (frame.title) } }
                a.subscribe href={ "/subscribe?lang=" (lang) } { (frame.subscribe) }
            }
            nav aria-label=(frame.language) {
                a href="?lang=sv" lang="sv" aria-current=[(lang == "sv").then_some("true")] { "Svenska" }
                " · "
                a href="?lang=en" lang="en" aria-current=[(lang == "en").then_some("true")] { "English" }
            }
        }
        main { (body) }
        footer { (footer) }
    };
    document(lang, html! { (frame.organisation) " · " (frame.title) }, STATUS_STYLE, None, page)
}

/// A small public form page (subscribe, confirm, unsubscribe) with a link back to the status.
pub fn form_page(lang: &str, title: &str, back: &str, body: Markup) -> Markup {
    let page = html! {
        main {
            h1 { (title) }
            (body)
            p { a href="/" { (back) } }
        }
    };
    document(lang, html! { (title) }, FORM_STYLE, None, page)
}
