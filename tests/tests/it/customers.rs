//! Customers and subscribers against `vakt-collector up` and a real SMTP server (aiosmtpd):
//! an incident affecting two customers e-mails each of their contacts exactly one update and
//! one resolution; a status-page subscriber who did not confirm gets nothing; a confirmed one
//! gets public updates with an unsubscribe link that works.

use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Proc, SmtpServer, collector_binary, eventually, free_port, wait_for_port};

struct Site {
    dir: tempfile::TempDir,
    http: u16,
    smtp: SmtpServer,
    token: String,
    _collector: Proc,
}

impl Site {
    fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let smtp = SmtpServer::start(dir.path());
        let (http, mqtt) = (free_port(), free_port());
        let config = dir.path().join("collector.toml");
        std::fs::write(
            &config,
            format!(
                "[smtp]\nserver = \"127.0.0.1:{}\"\ntls = \"none\"\nfrom = \"Exempel AB <status@example.test>\"\ntimeout = \"5s\"\n\
                 [public]\nurl = \"http://127.0.0.1:{http}\"\norganisation = \"Exempel AB\"\ndirect_max = 2\n\
                 [[component]]\nname = \"mail\"\ntitle = \"E-mail\"\n[[component]]\nname = \"shop\"\ntitle = \"Web shop\"\n",
                smtp.port
            ),
        )
        .unwrap();
        let data = dir.path().join("data");
        let collector = Proc::spawn(
            "vakt-collector up",
            Command::new(collector_binary())
                .args(["up", "--no-agent", "--config"])
                .arg(&config)
                .arg("--data-dir")
                .arg(&data)
                .args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")]),
            &dir.path().join("collector.log"),
        );
        wait_for_port(http, Duration::from_secs(30));
        let cli = |args: &[&str], stdin: &str| {
            let mut child = Command::new(collector_binary())
                .args(args)
                .arg("--data-dir")
                .arg(&data)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            use std::io::Write;
            writeln!(child.stdin.take().unwrap(), "{stdin}").unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
            String::from_utf8_lossy(&out.stdout).into_owned()
        };
        cli(&["user", "add", "ops", "--admin", "--password-stdin"], "a long test password");
        let created = cli(&["token", "create", "--user", "ops", "--name", "test", "--scopes", "read,triage,admin"], "");
        let token = created.split_whitespace().last().unwrap().to_string();
        Site { dir, http, smtp, token, _collector: collector }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// A JSON API call with the admin token: (status, body).
    fn api(&self, method: &str, path: &str, body: &serde_json::Value) -> (u16, serde_json::Value) {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}", "-X", method, "-H", "content-type: application/json"])
            .args([
                "-H",
                &format!("authorization: Bearer {}", self.token),
                "--data",
                &body.to_string(),
                &self.url(path),
            ])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap();
        (code.parse().unwrap(), serde_json::from_str(body).unwrap_or(serde_json::Value::String(body.into())))
    }

    /// A public form POST (no login): the HTTP status.
    fn form(&self, path: &str, fields: &[(&str, &str)]) -> u16 {
        let mut command = Command::new("curl");
        command.args(["-s", "-o", "/dev/null", "-w", "%{http_code}"]);
        for (k, v) in fields {
            command.args(["--data-urlencode", &format!("{k}={v}")]);
        }
        let out = command.arg(self.url(path)).output().unwrap();
        String::from_utf8_lossy(&out.stdout).parse().unwrap()
    }

    fn get(&self, url: &str) -> String {
        let out = Command::new("curl").args(["-sf", url]).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn mails(&self, to: &str) -> Vec<String> {
        self.smtp.messages_to(to)
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }
}

/// The token of the link in a message (`...?token=HEX`).
fn token_in(message: &str, path: &str) -> String {
    let message = body(message);
    let at = message.find(&format!("{path}?token=")).unwrap_or_else(|| panic!("no {path} link in {message}"));
    message[at..].split("token=").nth(1).unwrap().chars().take_while(char::is_ascii_alphanumeric).collect()
}

/// The decoded subject (RFC 2047 words, folded lines), read by Python's e-mail parser.
fn subject(message: &str) -> String {
    python_email(message, "print(str(make_header(decode_header(m['Subject']))))")
}

/// The decoded text body (quoted-printable or base64).
fn body(message: &str) -> String {
    python_email(message, "print(m.get_payload(decode=True).decode(m.get_content_charset() or 'utf-8'))")
}

fn python_email(message: &str, print: &str) -> String {
    let script = format!(
        "import email, sys\nfrom email.header import decode_header, make_header\nm = email.message_from_string(sys.stdin.read())\n{print}"
    );
    let mut child =
        Command::new("python3").args(["-c", &script]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(message.as_bytes()).unwrap();
    String::from_utf8_lossy(&child.wait_with_output().unwrap().stdout).trim().to_string()
}

fn settle(site: &Site, addresses: &[&str], expected: usize) {
    eventually(Duration::from_secs(30), || {
        let n: usize = addresses.iter().map(|a| site.mails(a).len()).sum();
        (n >= expected, ())
    });
    // Anything more would arrive within the sender's next rounds.
    std::thread::sleep(Duration::from_secs(3));
}

#[test]
fn two_customers_hear_one_update_and_one_resolution_and_subscribers_only_once_confirmed() {
    let site = Site::start();
    let customer = |name: &str, lang: &str, contacts: &[&str], components: &[&str]| {
        let body = serde_json::json!({"name": name, "lang": lang, "contacts": contacts, "components": components});
        let (status, reply) = site.api("POST", "/api/v1/customers", &body);
        assert_eq!(status, 201, "{reply}");
    };
    customer("Acme", "en", &["anna@acme.example", "ali@acme.example"], &["mail"]);
    customer("Bolaget", "sv", &["bo@bolaget.example"], &["mail"]);
    customer("Other", "en", &["olga@other.example"], &["shop"]);
    // Bad input is refused and changes nothing.
    let (status, _) =
        site.api("POST", "/api/v1/customers", &serde_json::json!({"name": "X", "contacts": ["not-an-address"]}));
    assert_eq!(status, 400);
    let (status, _) = site.api(
        "POST",
        "/api/v1/customers",
        &serde_json::json!({"name": "Y", "contacts": ["y@y.example"], "components": ["nope"]}),
    );
    assert_eq!(status, 400);

    // Two would-be subscribers; only one confirms (later).
    assert_eq!(site.form("/subscribe", &[("email", "quiet@example.org"), ("lang", "en")]), 200);
    assert_eq!(site.form("/subscribe", &[("email", "fan@example.org"), ("lang", "sv"), ("component", "mail")]), 200);
    assert_eq!(site.form("/subscribe", &[("email", "not an address")]), 400);
    settle(&site, &["quiet@example.org", "fan@example.org"], 2);

    // An incident on `mail` affects Acme and Bolaget (2 customers = direct_max): direct.
    let (status, opened) = site.api(
        "POST",
        "/api/v1/incidents",
        &serde_json::json!({"title": "E-mail to some domains delayed", "components": ["mail"]}),
    );
    assert_eq!(status, 201, "{opened}");
    let id = opened["id"].as_i64().unwrap();
    let (_, affected) = site.api("GET", &format!("/api/v1/incidents/{id}/customers"), &serde_json::json!({}));
    let names: Vec<&str> =
        affected["customers"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Acme", "Bolaget"]);
    let (status, told) = site.api(
        "POST",
        &format!("/api/v1/incidents/{id}/communicate"),
        &serde_json::json!({"status": "identified", "text": "A relay rejects mail to two providers; we are rerouting."}),
    );
    assert_eq!(status, 200, "{told}");
    assert!(told["message"].as_str().unwrap().contains("e-mailed"), "{told}");
    let (status, _) = site.api("POST", &format!("/api/v1/incidents/{id}/resolve"), &serde_json::json!({}));
    assert_eq!(status, 200);
    let contacts = ["anna@acme.example", "ali@acme.example", "bo@bolaget.example"];
    settle(&site, &contacts, 6);
    // The sender works in parallel, so the two may arrive in either order.
    for to in contacts {
        let mut subjects: Vec<String> = site.mails(to).iter().map(|m| subject(m)).collect();
        subjects.sort();
        let expected = if to.ends_with("bolaget.example") {
            // Swedish for Bolaget.
            [
                "[Exempel AB] Löst: E-mail to some domains delayed",
                "[Exempel AB] Orsaken är identifierad: E-mail to some domains delayed",
            ]
        } else {
            [
                "[Exempel AB] Identified: E-mail to some domains delayed",
                "[Exempel AB] Resolved: E-mail to some domains delayed",
            ]
        };
        assert_eq!(subjects, expected, "{to}");
    }
    assert!(site.mails("olga@other.example").is_empty(), "Other does not use mail");
    let (_, shown) = site.api("GET", &format!("/api/v1/incidents/{id}"), &serde_json::json!({}));
    let kinds: Vec<&str> = shown["timeline"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert!(kinds.contains(&"customer_update") && kinds.contains(&"customer_resolved"), "{kinds:?}");
    assert_eq!(shown["public"], false, "told directly, not on the status page");
    // Nothing went to subscribers: the incident was not public.
    assert_eq!(site.mails("fan@example.org").len(), 1, "only the confirmation");

    // The fan confirms through the link in the mail (GET shows a button; POST confirms).
    let confirmation = site.mails("fan@example.org").remove(0);
    let token = token_in(&confirmation, "/subscribe/confirm");
    assert!(site.get(&site.url(&format!("/subscribe/confirm?token={token}"))).contains("<button"));
    assert_eq!(site.form("/subscribe/confirm", &[("token", &token), ("lang", "sv")]), 200);
    assert_eq!(site.form("/subscribe/confirm", &[("token", "forged")]), 404);

    // A second incident, published on the status page: the confirmed subscriber hears it.
    let (_, second) =
        site.api("POST", "/api/v1/incidents", &serde_json::json!({"title": "Mail queue slow", "components": ["mail"]}));
    let second = second["id"].as_i64().unwrap();
    let (status, published) = site.api(
        "POST",
        &format!("/api/v1/incidents/{second}/communicate"),
        &serde_json::json!({"status": "investigating", "text": "Mail is slow; we are looking into it.", "public": true}),
    );
    assert_eq!(status, 200, "{published}");
    settle(&site, &["fan@example.org"], 2);
    let update = site.mails("fan@example.org").remove(1);
    assert!(subject(&update).contains("Mail queue slow"), "{update}");
    assert_eq!(site.mails("quiet@example.org").len(), 1, "an unconfirmed subscriber gets nothing but the confirmation");
    assert!(site.get(&site.url("/")).contains("Mail is slow; we are looking into it."));

    // Resolving it posts the closing update on the page, and the subscriber hears it.
    let (status, _) = site.api("POST", &format!("/api/v1/incidents/{second}/resolve"), &serde_json::json!({}));
    assert_eq!(status, 200);
    settle(&site, &["fan@example.org"], 3);
    let (_, timeline) = site.api("GET", &format!("/api/v1/incidents/{second}"), &serde_json::json!({}));
    let log = std::fs::read_to_string(site.dir.path().join("collector.log")).unwrap_or_default();
    assert_eq!(site.mails("fan@example.org").len(), 3, "{:#}\n{log}", timeline["timeline"]);
    let closing = site.mails("fan@example.org").remove(2);
    assert!(subject(&closing).contains("Löst: Mail queue slow"), "{}", subject(&closing));
    let (_, public) = site.api("GET", "/api/v2/incidents.json", &serde_json::json!({}));
    let shown = public["incidents"].as_array().unwrap().iter().find(|i| i["name"] == "Mail queue slow").unwrap();
    assert_eq!(shown["status"], "resolved", "{shown}");

    // The unsubscribe link in a message works; later updates do not reach the address.
    let token = token_in(&update, "/unsubscribe");
    assert_eq!(site.form("/unsubscribe", &[("token", &token)]), 200);
    let (_, subscribers) = site.api("GET", "/api/v1/subscribers", &serde_json::json!({}));
    let left: Vec<&str> =
        subscribers["subscribers"].as_array().unwrap().iter().map(|s| s["email"].as_str().unwrap()).collect();
    assert_eq!(left, ["quiet@example.org"], "the address is deleted");
    site.api(
        "POST",
        &format!("/api/v1/incidents/{second}/updates"),
        &serde_json::json!({"status": "monitoring", "text": "Watching it."}),
    );
    std::thread::sleep(Duration::from_secs(4));
    assert_eq!(site.mails("fan@example.org").len(), 3, "nothing after unsubscribing");
    assert_eq!(site.mails("quiet@example.org").len(), 1, "still only the confirmation");
    let audit =
        Command::new(collector_binary()).args(["audit", "verify", "--data-dir"]).arg(site.data()).output().unwrap();
    assert!(audit.status.success());
}
