//! The web side in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver), against `vakt-collector up`. Screenshots go to `<target>/screenshots/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Proc, collector_binary, free_port, wait_for_port};
use fantoccini::{Client, ClientBuilder, Locator};

const PASSWORD: &str = "a long test password";

struct Site {
    dir: tempfile::TempDir,
    http: u16,
    _collector: Proc,
    _driver: Proc,
    driver_port: u16,
}

impl Site {
    fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let (http, mqtt) = (free_port(), free_port());
        let collector = Proc::spawn(
            "vakt-collector up",
            Command::new(collector_binary())
                .arg("up")
                .arg("--no-agent")
                .arg("--data-dir")
                .arg(dir.path().join("data"))
                .args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")]),
            &dir.path().join("collector.log"),
        );
        wait_for_port(http, Duration::from_secs(30));
        let driver_port = free_port();
        let driver = Proc::spawn(
            "chromedriver",
            Command::new("chromedriver").arg(format!("--port={driver_port}")),
            &dir.path().join("chromedriver.log"),
        );
        wait_for_port(driver_port, Duration::from_secs(30));
        let site = Site { dir, http, _collector: collector, _driver: driver, driver_port };
        site.cli(&["user", "add", "tech", "--role", "technician", "--password-stdin"], Some(PASSWORD));
        site.cli(&["user", "add", "vera", "--role", "viewer", "--password-stdin"], Some(PASSWORD));
        site
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// Run `vakt-collector ARGS --data-dir …`, with `stdin` piped in; panics unless it succeeds.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = Command::new(collector_binary())
            .args(args)
            .arg("--data-dir")
            .arg(self.dir.path().join("data"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut input = child.stdin.take().unwrap();
        if let Some(text) = stdin {
            writeln!(input, "{text}").unwrap();
        }
        drop(input);
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn curl(&self, path: &str) -> String {
        let out = Command::new("curl").args(["-sf", &self.url(path)]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    async fn browser(&self, javascript: bool) -> Client {
        // A profile inside this test's directory: `Drop` kills every browser process using it,
        // so no Chromium outlives the test (chromedriver's children survive its SIGKILL).
        let profile = self.dir.path().join(format!("profile-{}", free_port()));
        let mut prefs = serde_json::Map::new();
        if !javascript {
            prefs.insert("profile.managed_default_content_settings.javascript".into(), 2.into());
        }
        let caps = serde_json::json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--window-size=1280,1100", "--lang=en-GB",
                         format!("--user-data-dir={}", profile.display())],
                "prefs": prefs,
            }
        });
        let caps: serde_json::Map<String, serde_json::Value> = serde_json::from_value(caps).unwrap();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        ClientBuilder::new(connector)
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.driver_port))
            .await
            .unwrap_or_else(|e| panic!("starting chromium through chromedriver: {e}"))
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        let pattern = format!("user-data-dir={}", self.dir.path().display());
        let _ = Command::new("pkill").args(["-9", "-f", &pattern]).status();
    }
}

/// `<target>/screenshots`, next to the test binaries.
fn screenshots() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(Path::parent).unwrap().join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
}

async fn login(client: &Client, site: &Site, user: &str) {
    client.goto(&site.url("/login")).await.unwrap();
    client.find(Locator::Id("user")).await.unwrap().send_keys(user).await.unwrap();
    client.find(Locator::Id("password")).await.unwrap().send_keys(PASSWORD).await.unwrap();
    client.find(Locator::Css("main form button[type=submit]")).await.unwrap().click().await.unwrap();
    let mut path = String::new();
    for _ in 0..100 {
        path = client.current_url().await.unwrap().path().to_string();
        if path == "/ops" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let page = client.source().await.unwrap_or_default();
    panic!("{user} did not land on the dashboard but on {path}: {page}");
}

/// Wait (up to 10 s) for the element's text to become `expected` after a navigation.
async fn wait_text(client: &Client, css: &str, expected: &str) {
    let mut last = String::new();
    for _ in 0..100 {
        if let Ok(e) = client.find(Locator::Css(css)).await {
            last = e.text().await.unwrap_or_default();
            if last.contains(expected) {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css}: expected {expected:?}, still {last:?}");
}

async fn text(client: &Client, css: &str) -> String {
    client.find(Locator::Css(css)).await.unwrap().text().await.unwrap()
}

/// WCAG 2.1 A and AA rules of axe-core (from npm; `.ci/run` installs it and sets `VAKT_AXE`)
/// on the current page: the violations, as "rule: target" lines.
async fn axe(client: &Client) -> Vec<String> {
    let path = std::env::var("VAKT_AXE").unwrap_or_else(|_| {
        let cache = std::env::var("XDG_CACHE_HOME")
            .unwrap_or_else(|_| format!("{}/.cache", std::env::var("HOME").unwrap_or_default()));
        format!("{cache}/vakt/axe/node_modules/axe-core/axe.min.js")
    });
    let source = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("axe-core at {path}: {e} (run .ci/run, which installs it from npm)"));
    client.execute(&source, vec![]).await.unwrap();
    let result = client
        .execute_async(
            "const done = arguments[0];
             axe.run(document, {runOnly: {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})
               .then(r => done(r.violations.map(v => v.id + ': ' + v.nodes.map(n => n.target.join(' ')).join(', '))))
               .catch(e => done(['axe failed: ' + e]));",
            vec![],
        )
        .await
        .unwrap();
    serde_json::from_value(result).unwrap()
}

async fn buttons(client: &Client) -> Vec<String> {
    let mut out = Vec::new();
    for b in client.find_all(Locator::Css("button")).await.unwrap() {
        out.push(b.text().await.unwrap());
    }
    out
}

#[test]
fn status_page_operator_flow_and_a_viewer_refused_in_chromium() {
    let site = Site::start();
    let opened =
        site.cli(&["incident", "open", "E-mail delivery to some domains delayed", "--severity", "major"], None);
    let id: i64 = opened.trim().trim_start_matches('#').split_whitespace().next().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        // The public page, with and without JavaScript.
        for javascript in [true, false] {
            let client = site.browser(javascript).await;
            client.goto(&site.url("/")).await.unwrap();
            let heading = text(&client, "h1").await;
            assert!(!heading.is_empty(), "the status page has a heading");
            let body = text(&client, "body").await;
            assert!(body.contains("All systems operational") || body.contains("operational"), "{body}");
            shot(&client, if javascript { "status-page-js" } else { "status-page-no-js" }).await;
            if javascript {
                for lang in ["en", "sv"] {
                    client.goto(&site.url(&format!("/?lang={lang}"))).await.unwrap();
                    let violations = axe(&client).await;
                    assert!(violations.is_empty(), "WCAG 2.1 AA on the status page ({lang}): {violations:#?}");
                }
            }
            // The browser really runs page scripts or not: the operator pages' script marks
            // the document when it runs.
            client.goto(&site.url("/login")).await.unwrap();
            let ran = client.execute("return document.documentElement.dataset.js || ''", vec![]).await.unwrap();
            assert_eq!(ran, serde_json::json!(if javascript { "1" } else { "" }));
            client.close().await.unwrap();
        }

        // A technician acknowledges and publishes an update.
        let tech = site.browser(true).await;
        login(&tech, &site, "tech").await;
        tech.find(Locator::LinkText(&format!("#{id}"))).await.unwrap().click().await.unwrap();
        assert_eq!(text(&tech, "#state").await, "triggered");
        tech.find(Locator::XPath("//button[normalize-space()='Acknowledge']")).await.unwrap().click().await.unwrap();
        wait_text(&tech, "#state", "acknowledged").await;
        wait_text(&tech, "#timeline", "acknowledged by tech").await;
        let form = tech.find(Locator::Css(&format!("form[action='/ops/incidents/{id}/updates']"))).await.unwrap();
        form.find(Locator::Css("select[name=status]")).await.unwrap().select_by_value("identified").await.unwrap();
        form.find(Locator::Css("textarea[name=text]"))
            .await
            .unwrap()
            .send_keys("Mail to some providers is queued; we are draining the queue.")
            .await
            .unwrap();
        form.find(Locator::Css("button")).await.unwrap().click().await.unwrap();
        wait_text(&tech, ".msg", "public update (identified) published").await;
        shot(&tech, "incident-page-technician").await;
        let violations = axe(&tech).await;
        assert!(violations.is_empty(), "WCAG 2.1 AA on the incident page: {violations:#?}");
        tech.goto(&site.url("/")).await.unwrap();
        // The snapshot refreshes on the change (and at least every second).
        let mut shown = false;
        for _ in 0..20 {
            let body = text(&tech, "body").await;
            if body.contains("Mail to some providers is queued") {
                shown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
            tech.refresh().await.unwrap();
        }
        assert!(shown, "the update is on the public page");
        shot(&tech, "status-page-with-update").await;
        tech.close().await.unwrap();

        // A viewer sees no controls, and a forged POST is refused and audited.
        let viewer = site.browser(true).await;
        login(&viewer, &site, "vera").await;
        viewer.goto(&site.url(&format!("/ops/incidents/{id}"))).await.unwrap();
        let labels = buttons(&viewer).await;
        assert!(!labels.iter().any(|b| b == "Acknowledge" || b == "Resolve" || b == "Publish update"), "{labels:?}");
        assert!(labels.iter().any(|b| b == "Sign out"), "{labels:?}");
        let forged = viewer
            .execute_async(
                &format!(
                    "const done = arguments[0];
                     const csrf = document.querySelector('input[name=csrf]').value;
                     fetch('/ops/incidents/{id}/resolve', {{method: 'POST', headers: {{'content-type': 'application/x-www-form-urlencoded'}}, body: 'csrf=' + csrf}})
                       .then(r => done(r.status)).catch(e => done(String(e)));"
                ),
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(forged, serde_json::json!(403));
        shot(&viewer, "incident-page-viewer").await;
        viewer.close().await.unwrap();
    });

    // The Atom feed carries the update; the state did not change for the viewer's POST.
    let atom = site.curl("/history.atom");
    assert!(atom.contains("Mail to some providers is queued"), "{atom}");
    let shown = site.cli(&["incident", "show", &id.to_string()], None);
    assert!(shown.contains("state: acknowledged"), "{shown}");
    // Refusals reach the trail within a second (they are written in aggregate, see `denials`).
    let audit = e2e::eventually(Duration::from_secs(10), || {
        let audit = site.cli(&["audit", "export"], None);
        (audit.contains("\"actor\":\"vera\"") && audit.contains("\"denied\""), audit)
    });
    let records: Vec<serde_json::Value> = audit.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let refused = records
        .iter()
        .find(|r| r["actor"] == "vera" && r["outcome"] == "denied")
        .unwrap_or_else(|| panic!("no denial for vera in {audit}"));
    assert_eq!(refused["action"], "POST /ops/incidents/{id}/resolve");
    assert_eq!(refused["role"], "viewer");
    assert_eq!(refused["source"], "127.0.0.1");
    assert!(
        records.iter().any(|r| r["actor"] == "tech" && r["action"] == "incident.acknowledge" && r["outcome"] == "ok")
    );
    assert!(records.iter().any(|r| r["actor"] == "tech" && r["action"] == "incident.public_update"));
    let verified = site.cli(&["audit", "verify"], None);
    assert!(verified.contains("intact"), "{verified}");
}
