//! The web side in a real browser: Debian's headless Chromium driven through chromedriver
//! (WebDriver), against `vakt-collector up`. Screenshots go to `<target>/screenshots/`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Proc, Up, free_port, wait_for_port};
use fantoccini::{Client, ClientBuilder, Locator};

const PASSWORD: &str = "a long test password";

struct Site {
    up: Up,
    _driver: Proc,
    driver_port: u16,
}

impl Site {
    fn start() -> Site {
        Site::start_with(None)
    }

    /// With `policy` as `up --config` (components, rules), when given.
    fn start_with(policy: Option<&str>) -> Site {
        Site::start_full(policy, false)
    }

    /// With `up`'s own agent too, when `agent`.
    fn start_full(policy: Option<&str>, agent: bool) -> Site {
        let up = Up::start_full(policy, agent);
        let driver_port = free_port();
        let driver = Proc::spawn(
            "chromedriver",
            Command::new("chromedriver").arg(format!("--port={driver_port}")),
            &up.dir.path().join("chromedriver.log"),
        );
        wait_for_port(driver_port, Duration::from_secs(30));
        let site = Site { up, _driver: driver, driver_port };
        site.cli(&["user", "add", "tech", "--role", "technician", "--password-stdin"], Some(PASSWORD));
        site.cli(&["user", "add", "vera", "--role", "viewer", "--password-stdin"], Some(PASSWORD));
        site
    }

    fn url(&self, path: &str) -> String {
        self.up.url(path)
    }

    /// Run `vakt-collector ARGS --data-dir …`, with `stdin` piped in; panics unless it succeeds.
    fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        self.up.cli(args, stdin)
    }

    fn curl(&self, path: &str) -> String {
        let out = Command::new("curl").args(["-sf", &self.url(path)]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// An admin `root` with a token for the API; the token.
    fn admin_token(&self) -> String {
        self.cli(&["user", "add", "root", "--admin", "--password-stdin"], Some(PASSWORD));
        let created =
            self.cli(&["token", "create", "--user", "root", "--name", "setup", "--scopes", "read,triage,admin"], None);
        created.split_whitespace().last().unwrap().to_string()
    }

    /// `method path` of the JSON API with `token`: the status and the body.
    fn api(&self, token: &str, method: &str, path: &str, body: &serde_json::Value) -> (u16, String) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", "content-type: application/json"])
            .args(["-H", &format!("authorization: Bearer {token}"), "--data", &body.to_string(), &self.url(path)])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), body.to_string())
    }

    async fn browser(&self, javascript: bool) -> Client {
        // A profile inside this test's directory: `Drop` kills every browser process using it,
        // so no Chromium outlives the test (chromedriver's children survive its SIGKILL).
        let profile = self.up.dir.path().join(format!("profile-{}", free_port()));
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
        let pattern = format!("user-data-dir={}", self.up.dir.path().display());
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

/// What a hostile person or config would type: script, an attribute break-out, quotes, a CDATA
/// end, an entity, a line break that would start a header or a Markdown heading, a
/// right-to-left override.
const HOSTILE: &str = "<script>alert(1)</script>\"><img src=x onerror=window.__xss=1>' ]]> &#x3C;b&#x3E; \r\nBcc: evil@example.org\r\n# heading \u{202E}gnp.exe";

/// In this page: no script of the attacker ran, no element came from the text, the text itself
/// is shown as text, and its bidirectional override is isolated (inside a `bdi`, a form field,
/// or alone in the heading, where the block's end ends it), so it cannot reorder the page's own
/// words.
async fn no_injection(client: &Client, page: &str, scripts: usize) {
    let found = client
        .execute(
            "const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
             let loose = 0;
             for (let n = walker.nextNode(); n; n = walker.nextNode()) {
               if (n.data.includes('\\u202E') && !n.parentElement.closest('bdi, h1, textarea')) loose++;
             }
             return [typeof window.__xss, document.querySelectorAll('img').length,
                     document.querySelectorAll('script').length, document.querySelectorAll('b').length,
                     document.body.textContent.includes('<script>alert(1)</script>\"><img src=x onerror=window.__xss=1>'),
                     loose]",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(found, serde_json::json!(["undefined", 0, scripts, 0, true, 0]), "{page}");
}

/// XML parsed by Python's standard library (a real parser, not ours): the texts of `path`.
fn xml_texts(xml: &str, path: &str) -> Vec<String> {
    let script = format!(
        "import sys, json, xml.etree.ElementTree as E\n\
         root = E.fromstring(sys.stdin.buffer.read())\n\
         ns = {{'a': 'http://www.w3.org/2005/Atom', 's': 'http://www.w3.org/2000/svg'}}\n\
         print(json.dumps([e.text for e in root.findall('{path}', ns)]))"
    );
    let mut child = Command::new("python3")
        .args(["-c", &script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "not XML: {}\n{xml}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn hostile_names_and_texts_stay_text_in_every_output() {
    // A component title and group from the config, as an operator's mistake or an attacker's
    // commit would write them.
    let toml_hostile = HOSTILE.replace('\\', "\\\\").replace('"', "\\\"").replace('\r', "\\r").replace('\n', "\\n");
    let site = Site::start_with(Some(&format!(
        "[[component]]\nname = \"shop\"\ntitle = \"{toml_hostile}\"\ngroup = \"{toml_hostile}\"\n"
    )));
    let token = site.admin_token();
    let api = |method: &str, path: &str, body: serde_json::Value| site.api(&token, method, path, &body);
    let long: String = HOSTILE.chars().cycle().take(10_000).collect();
    // Too long for a title: refused at the door, nothing made.
    let (status, _) = api("POST", "/api/v1/incidents", serde_json::json!({"title": long, "components": ["shop"]}));
    assert_eq!(status, 400);
    let (status, body) = api(
        "POST",
        "/api/v1/incidents",
        serde_json::json!({"title": HOSTILE, "severity": "major", "components": ["shop"]}),
    );
    assert_eq!(status, 201, "{body}");
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_i64().unwrap();
    let incident = format!("/api/v1/incidents/{id}");
    // An assignee is at most 100 characters: the hostile text's first 100.
    let assignee: String = HOSTILE.chars().take(100).collect();
    for (route, body) in [
        ("updates", serde_json::json!({"status": "identified", "text": HOSTILE})),
        ("assign", serde_json::json!({"assignee": assignee})),
        ("notes", serde_json::json!({"text": long})),
        ("classify", serde_json::json!({"classification": "personal-data-breach"})),
        ("breach", serde_json::json!({"nature": HOSTILE, "contact": HOSTILE})),
        ("postmortem", serde_json::json!({"summary": HOSTILE, "cause": HOSTILE})),
    ] {
        let (status, reply) = api("POST", &format!("{incident}/{route}"), body);
        assert!(status < 300, "{route}: {status} {reply}");
    }
    let (status, reply) = api(
        "POST",
        "/api/v1/customers",
        serde_json::json!({"name": HOSTILE, "lang": "en", "contacts": ["anna@example.org"], "components": ["shop"]}),
    );
    assert_eq!(status, 201, "{reply}");
    // A person's user name is held to letters, digits and . _ - @: the hostile one is refused.
    let (status, _) =
        api("POST", "/api/v1/users", serde_json::json!({"name": HOSTILE, "role": "viewer", "password": PASSWORD}));
    assert_eq!(status, 400);

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let client = site.browser(true).await;
        // The public page refreshes its snapshot within a second of the change.
        let mut shown = false;
        for _ in 0..40 {
            client.goto(&site.url("/")).await.unwrap();
            if text(&client, "body").await.contains("Bcc: evil@example.org") {
                shown = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert!(shown, "the hostile update is on the public page");
        no_injection(&client, "status page", 0).await;
        shot(&client, "hostile-status-page").await;
        client.goto(&site.url("/subscribe")).await.unwrap();
        no_injection(&client, "subscribe page", 0).await;
        login(&client, &site, "root").await;
        for page in [
            "/ops",
            &format!("/ops/incidents/{id}"),
            "/ops/customers",
            "/ops/breaches",
            "/ops/deviations",
            "/ops/audit",
        ] {
            client.goto(&site.url(page)).await.unwrap();
            // Every operator page has one script of its own (/ops.js), no other. The audit
            // trail lists records, not the texts, so only the first three hold there.
            if page == "/ops/audit" {
                let found = client
                    .execute(
                        "return [typeof window.__xss, document.querySelectorAll('img').length,
                                 document.querySelectorAll('script').length]",
                        vec![],
                    )
                    .await
                    .unwrap();
                assert_eq!(found, serde_json::json!(["undefined", 0, 1]), "{page}");
            } else {
                no_injection(&client, page, 1).await;
            }
        }
        shot(&client, "hostile-incident-page").await;
        client.close().await.unwrap();
    });

    // Feeds and the badge: well-formed XML whose texts are the hostile text, not markup.
    let atom = site.curl("/history.atom");
    let titles = xml_texts(&atom, "a:entry/a:title");
    assert!(titles.iter().any(|t| t.contains("<script>alert(1)</script>") && t.contains("]]>")), "{titles:?}");
    let rss = site.curl("/history.rss");
    let bodies = xml_texts(&rss, "channel/item/description");
    assert!(bodies.iter().any(|t| t.contains("\"><img src=x onerror=window.__xss=1>")), "{bodies:?}");
    let badge = site.curl("/badge/shop.svg");
    let texts = xml_texts(&badge, "s:title");
    assert!(texts.iter().any(|t| t.starts_with("<script>alert(1)</script>")), "{texts:?}");
    // The Markdown draft: every markup character escaped, the text on one line.
    let (status, md) = api("GET", &format!("{incident}/drafts/gdpr-art33?format=markdown"), serde_json::json!(null));
    assert_eq!(status, 200);
    assert!(md.contains("\\<script\\>alert(1)\\</script\\>"), "{md}");
    let bare = |c: char| md.match_indices(c).any(|(at, _)| !md[..at].ends_with('\\'));
    assert!(!bare('<') && !bare('['), "every < and [ is escaped: {md}");
    assert!(!md.lines().any(|l| l.starts_with("Bcc:") || l.starts_with("# heading")), "{md}");
    assert!(!md.contains('\u{202E}'), "no bidirectional override in the draft");
}

/// Viewport widths every page is seen at: a desktop and a phone.
const WIDTHS: [(&str, u32, u32); 2] = [("desktop", 1280, 900), ("phone", 390, 844)];

/// Every page there is, as an admin sees it: the public ones and every GET page of the operator
/// route table (so a page added later is photographed and checked too).
fn every_page(incident: i64, agent: &str, confirm: &str) -> Vec<(String, String)> {
    let mut pages: Vec<(String, String)> = [
        ("status-en", "/?lang=en".to_string()),
        ("status-sv", "/?lang=sv".to_string()),
        ("subscribe", "/subscribe?lang=en".to_string()),
        ("subscribe-sv", "/subscribe?lang=sv".to_string()),
        ("subscribe-confirm", format!("/subscribe/confirm?token={confirm}")),
        ("unsubscribe", format!("/unsubscribe?token={confirm}")),
    ]
    .into_iter()
    .map(|(n, p)| (n.to_string(), p))
    .collect();
    for route in collector::http::ops::ROUTES {
        use collector::http::ops::{Handler, Verb};
        if route.method != Verb::Get || !matches!(route.handler, Handler::Ui(_)) {
            continue;
        }
        let path = match route.path {
            "/ops/check" => format!("/ops/check?agent={agent}&check=load"),
            p => p.replace("{id}", &incident.to_string()),
        };
        let name = path.trim_start_matches('/').split('?').next().unwrap_or_default().replace('/', "-");
        pages.push((name.replace(&incident.to_string(), "incident"), path));
    }
    pages
}

/// Photograph the current page whole at `width` (the window grown to the page's height, at
/// most 8,000 pixels).
async fn shot_whole(client: &Client, name: &str, width: u32, height: u32) {
    client.set_window_size(width, height).await.unwrap();
    let sizes = client
        .execute("return [document.documentElement.scrollHeight, window.outerHeight - window.innerHeight]", vec![])
        .await
        .unwrap();
    let number = |n: usize| u32::try_from(sizes[n].as_u64().unwrap_or(0)).unwrap_or(0);
    let tall = (number(0) + number(1)).clamp(height, 8000);
    client.set_window_size(width, tall).await.unwrap();
    shot(client, name).await;
    client.set_window_size(width, height).await.unwrap();
}

#[test]
fn every_page_is_photographed_at_desktop_and_phone_width_and_meets_wcag_2_1_aa() {
    let policy = r#"
[public]
organisation = "Exempel AB"

[[component]]
name = "web"
title = "Web shop"
group = "Customer services"
[[component]]
name = "mail"
title = "E-mail"
group = "Customer services"
[[component]]
name = "dns"
title = "DNS"
"#;
    let site = Site::start_full(Some(policy), true);
    let token = site.admin_token();
    let api = |method: &str, path: &str, body: serde_json::Value| {
        let (code, reply) = site.api(&token, method, path, &body);
        assert!((200..300).contains(&code), "{method} {path}: {code} {reply}");
        reply
    };
    // Something on every page: an incident told publicly with a postmortem and a breach
    // record, a customer, a maintenance window, an enrollment token, a subscriber.
    let opened = api(
        "POST",
        "/api/v1/incidents",
        serde_json::json!({"title": "Card payments fail for some customers", "severity": "major", "components": ["web"]}),
    );
    let id = serde_json::from_str::<serde_json::Value>(&opened).unwrap()["id"].as_i64().unwrap();
    let incident = format!("/api/v1/incidents/{id}");
    for (route, body) in [
        (
            "updates",
            serde_json::json!({"status": "investigating", "text": "Some card payments are declined; we are looking into it."}),
        ),
        (
            "updates",
            serde_json::json!({"status": "identified", "text": "The payment provider's certificate changed; a fix is being deployed."}),
        ),
        ("assign", serde_json::json!({"assignee": "tech"})),
        ("notes", serde_json::json!({"text": "Provider ticket 4711."})),
        ("classify", serde_json::json!({"classification": "personal-data-breach"})),
        (
            "breach",
            serde_json::json!({"nature": "Card numbers shown to the wrong customer", "contact": "dpo@example.se"}),
        ),
        (
            "postmortem",
            serde_json::json!({"summary": "A certificate rotation at the provider", "cause": "Pinned certificate", "impact": "Payments failed for 40 minutes"}),
        ),
        (
            "actions",
            serde_json::json!({"text": "Stop pinning the provider's leaf certificate", "owner": "tech", "due": "2030-01-31"}),
        ),
    ] {
        api("POST", &format!("{incident}/{route}"), body);
    }
    api(
        "POST",
        "/api/v1/customers",
        serde_json::json!({"name": "Handelsbolaget Ek", "lang": "sv", "contacts": ["it@ek.example"], "components": ["web"]}),
    );
    let at = |s: i64| {
        humantime::format_rfc3339_seconds(std::time::SystemTime::now() + Duration::from_secs(s as u64)).to_string()
    };
    api(
        "POST",
        "/api/v1/windows",
        serde_json::json!({"kind": "maintenance", "reason": "Database upgrade", "components": ["mail"], "start": at(86_400), "end": at(90_000)}),
    );
    site.cli(&["enroll", "create", "--agents", "web-*", "--uses", "5"], None);
    // A subscription waiting for confirmation (its token from the confirmation mail's link is
    // not readable here; a made-up one shows the form, which is the page).
    let confirm = "0123456789abcdef0123456789abcdef";
    // The local agent's results, for the agents and check pages.
    let agent = String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string();
    let heard = e2e::eventually(Duration::from_secs(120), || {
        let body = api("GET", "/api/v1/checks", serde_json::json!(null));
        (body.contains("\"check\":\"load\""), body)
    });
    assert!(heard.contains("\"check\":\"load\""), "no results from the local agent: {heard}");
    let pages = every_page(id, &agent, confirm);
    assert!(pages.len() >= 15, "{pages:#?}");

    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let failures = runtime.block_on(async {
        let client = site.browser(true).await;
        login(&client, &site, "root").await;
        // The one agent, counted in words; its checks' states in words and colour.
        let said = text(&client, "main").await;
        assert!(said.contains("The one agent is online."), "{said}");
        client.goto(&site.url("/ops/agents")).await.unwrap();
        let colour = client
            .execute(
                "const s = document.querySelector('span.st'); return s ? [s.textContent, getComputedStyle(s).color] : null",
                vec![],
            )
            .await
            .unwrap();
        let (state, rgb) = (colour[0].as_str().unwrap_or_default(), colour[1].as_str().unwrap_or_default());
        let expected = match state {
            "ok" => "rgb(27, 107, 47)",
            "warning" => "rgb(122, 86, 0)",
            "critical" => "rgb(160, 0, 0)",
            _ => "rgb(91, 63, 140)",
        };
        assert_eq!(rgb, expected, "{state} is coloured");
        let mut failures = Vec::new();
        for (name, path) in &pages {
            for (label, width, height) in WIDTHS {
                client.set_window_size(width, height).await.unwrap();
                client.goto(&site.url(path)).await.unwrap();
                let status = client.find(Locator::Css("h1")).await;
                if status.is_err() {
                    failures
                        .push(format!("{path} at {label}: no heading: {}", client.source().await.unwrap_or_default()));
                    continue;
                }
                // Nothing wider than the screen: a phone never scrolls sideways.
                let overflow = client
                    .execute(
                        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
                        vec![],
                    )
                    .await
                    .unwrap();
                if overflow.as_i64().unwrap_or(0) > 0 {
                    failures.push(format!("{path} at {label}: {overflow} px wider than the screen"));
                }
                for v in axe(&client).await {
                    failures.push(format!("{path} at {label}: {v}"));
                }
                shot_whole(&client, &format!("page-{name}-{label}"), width, height).await;
            }
        }
        client.close().await.unwrap();
        failures
    });
    assert!(failures.is_empty(), "{} problems:\n{}", failures.len(), failures.join("\n"));
    let taken = std::fs::read_dir(screenshots())
        .unwrap()
        .filter(|e| e.as_ref().is_ok_and(|e| e.file_name().to_string_lossy().starts_with("page-")))
        .count();
    assert!(taken >= pages.len() * 2, "{taken} screenshots for {} pages", pages.len());
}
