//! The contracts third parties rely on, checked with clients nobody here wrote: a Statuspage
//! client from npm reading `/api/v2`, and the collector's feeds and favicon as a reader and a
//! browser fetch them.

use std::process::Command;
use std::time::{Duration, SystemTime};

use e2e::{Up, eventually, http_get, npm_dir, root};

/// RFC 3339 of now + `hours` (negative: in the past).
fn at(hours: i64) -> String {
    let now = SystemTime::now();
    let shift = Duration::from_secs(hours.unsigned_abs() * 3600);
    let t = if hours < 0 { now - shift } else { now + shift };
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A status page with a group, a maintenance in progress and one to come.
fn policy() -> String {
    format!(
        r#"
[public]
url = "https://status.example.se"
organisation = "Example AB"

[[component]]
name = "mail"
title = "E-mail"
group = "Customer services"

[[component]]
name = "web"
title = "Web shop"
group = "Customer services"

[[component]]
name = "dns"
title = "DNS"

[[maintenance]]
components = ["dns"]
start = "{}"
end = "{}"
reason = "Resolver upgrade"

[[maintenance]]
components = ["web"]
start = "{}"
end = "{}"
reason = "Database migration"
"#,
        at(-1),
        at(1),
        at(24),
        at(26)
    )
}

#[test]
fn the_npm_statuspage_client_reads_every_document_as_its_declarations_promise() {
    let up = Up::start(Some(&policy()));
    let opened = up.cli(&["incident", "open", "Mail delayed", "--severity", "major", "--component", "mail"], None);
    let id = opened.trim().trim_start_matches('#').split_whitespace().next().unwrap().to_string();
    up.cli(&["incident", "update", &id, "identified", "A queue is stuck; we are draining it."], None);
    // The snapshot refreshes within a second of a change.
    eventually(Duration::from_secs(10), || {
        let (_, body) = http_get(up.http, "/api/v2/incidents/unresolved.json");
        (body.contains("draining"), ())
    });
    let modules = npm_dir().join("node_modules");
    assert!(
        modules.join("statuspage.io").exists(),
        "the statuspage.io client is not installed in {} (run .ci/run)",
        modules.display()
    );
    let out = Command::new("node")
        .arg(root().join("tests/consumers/statuspage-client.js"))
        .arg(up.url(""))
        .env("NODE_PATH", &modules)
        .output()
        .expect("running node");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "getSummary: ok components=4 incidents=1 scheduled_maintenances=2",
        "getStatus: ok",
        "getComponents: ok components=4",
        "incidents.getAll: ok incidents=1",
        "incidents.getUnresolved: ok incidents=1",
        "scheduledMaintenances.getUpcoming: ok scheduled_maintenances=1",
        "GET scheduled-maintenances.json: ok scheduled_maintenances=2",
        "GET scheduled-maintenances/active.json: ok scheduled_maintenances=1",
    ] {
        assert!(text.lines().any(|l| l == expected), "{expected:?} not in\n{text}");
    }
    // What the client reads names the organisation and links back absolutely.
    let summary: serde_json::Value = serde_json::from_str(&http_get(up.http, "/api/v2/summary.json").1).unwrap();
    assert_eq!(summary["page"]["name"], "Example AB");
    assert_eq!(summary["page"]["url"], "https://status.example.se/");
    assert_eq!(summary["incidents"][0]["shortlink"], format!("https://status.example.se/#incident-{id}"));
    assert_eq!(summary["incidents"][0]["components"][0]["group_id"], "group-customer-services");
}

#[test]
fn the_feeds_link_absolutely_and_every_page_has_an_icon() {
    let up = Up::start(Some(&policy()));
    up.cli(&["incident", "open", "Mail delayed", "--severity", "major", "--component", "mail"], None);
    let id = "1";
    up.cli(&["incident", "update", id, "investigating", "Looking into it."], None);
    let atom = eventually(Duration::from_secs(10), || {
        let (_, body) = http_get(up.http, "/history.atom");
        (body.contains("Looking into it"), body)
    });
    assert!(
        atom.contains(r#"<link rel="self" type="application/atom+xml" href="https://status.example.se/history.atom">"#),
        "{atom}"
    );
    assert!(atom.contains(r#"href="https://status.example.se/#incident-1""#), "{atom}");
    let (_, rss) = http_get(up.http, "/history.rss");
    assert!(rss.contains("<link>https://status.example.se/#incident-1</link>"), "{rss}");
    assert!(rss.contains(r#"<atom:link href="https://status.example.se/history.rss" rel="self""#), "{rss}");
    // The favicon is a real icon, and every page points at it.
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "\n%{http_code} %{content_type}", &up.url("/favicon.ico")])
        .output()
        .unwrap();
    let (icon, trailer) = out.stdout.split_at(out.stdout.iter().rposition(|b| *b == b'\n').unwrap());
    assert_eq!(String::from_utf8_lossy(trailer).trim(), "200 image/x-icon");
    assert!(icon.starts_with(&[0, 0, 1, 0, 1, 0]), "an ICO file with one image");
    for page in ["/", "/subscribe", "/login"] {
        let (status, body) = http_get(up.http, page);
        assert_eq!(status, 200, "{page}");
        assert!(body.contains(r#"<link rel="icon" href="/favicon.ico">"#), "{page}: {body}");
    }
    // An organisation's own icon replaces Vakt's.
    let icons = tempfile::tempdir().unwrap();
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR the organisation's own";
    std::fs::write(icons.path().join("org.png"), png).unwrap();
    let own = Up::start(Some(&format!("[public]\nfavicon = \"{}\"\n", icons.path().join("org.png").display())));
    let out = Command::new("curl")
        .args(["-s", "-o", "-", "-w", "%{content_type}", &own.url("/favicon.ico")])
        .output()
        .unwrap();
    assert_eq!(out.stdout, [&png[..], b"image/png"].concat());
}
