//! Tests of the policy: parsing, validation with line numbers, and lookups in time.

#![allow(clippy::unwrap_used)]

use super::*;

fn policy(text: &str) -> Result<Policy, String> {
    let model: PolicyModel = toml::from_str(text).map_err(|e| e.to_string())?;
    Policy::build(model, text, &crate::rules::policy::no_files)
}

const FULL: &str = r#"
[defaults]
escalation = "default"
team = "ops"
runbook = "general runbook"

[smtp]
server = "127.0.0.1:2525"
tls = "none"
from = "Vakt <vakt@example.com>"

[[channel]]
name = "ops-chat"
kind = "slack"
url = "http://127.0.0.1:9/slack"

[[person]]
name = "alice"
email = "alice@example.com"

[[person]]
name = "bob"
webhook = "http://127.0.0.1:9/bob"

[[person]]
name = "carol"
email = "carol@example.com"

[[team]]
name = "ops"
members = ["alice", "bob"]
channel = "ops-chat"
rotation_start = "2026-11-23T08:00:00Z"
rotation_every = "1w"
[[team.override]]
person = "carol"
from = "2026-12-24T08:00:00Z"
until = "2026-12-25T08:00:00Z"

[[escalation]]
name = "default"
repeat = 1
ack_timeout = "30m"
[[escalation.step]]
notify = ["oncall:ops"]
wait = "5m"
[[escalation.step]]
notify = ["team:ops", "channel:ops-chat"]
wait = "10m"

[[component]]
name = "web"
runbook = "web runbook"

[[rule]]
agents = "web-*"
checks = "http*"
severity = "critical"
components = ["web"]
failure_threshold = 1

[[rule]]
checks = "disk"
runbook = "disk runbook"
urgency = "page"

[[silence]]
agents = "db-*"
until = "2026-12-01T00:00:00Z"
reason = "migration"
"#;

fn at(text: &str) -> Ms {
    ms_of(humantime::parse_rfc3339(text).unwrap())
}

#[test]
fn globs_match_like_shell_stars() {
    for (p, t, m) in [
        ("*", "", true),
        ("web-*", "web-1", true),
        ("web-*", "db-1", false),
        ("*-1", "web-1", true),
        ("w*b*1", "web-01", true),
        ("disk", "disk2", false),
        ("a*a", "a", false),
    ] {
        assert_eq!(glob(p, t), m, "{p} {t}");
    }
}

#[test]
fn rules_pick_thresholds_severity_runbook_and_the_first_match_wins() {
    let p = policy(FULL).unwrap();
    assert_eq!(p.thresholds("web-1", "http-main").failure, 1);
    assert_eq!(p.thresholds("db-1", "http-main").failure, 3, "no rule: defaults");
    let m = p.meta("web-1", Some("http-main"), Status::Warning, at("2026-11-27T10:00:00Z"));
    assert_eq!((m.severity, m.urgency), (Severity::Critical, Urgency::Page));
    assert_eq!(m.runbook.as_deref(), Some("web runbook"), "the component's runbook");
    assert_eq!(m.components, ["web"]);
    assert_eq!(m.escalation.as_deref(), Some("default"));
    let m = p.meta("web-1", Some("disk"), Status::Warning, at("2026-11-27T10:00:00Z"));
    assert_eq!((m.severity, m.urgency), (Severity::Minor, Urgency::Page));
    assert_eq!(m.runbook.as_deref(), Some("disk runbook"));
    let m = p.meta("web-1", Some("load"), Status::Unknown, at("2026-11-27T10:00:00Z"));
    assert_eq!((m.severity, m.urgency), (Severity::Major, Urgency::Notify));
    assert_eq!(m.runbook.as_deref(), Some("general runbook"));
    let host = p.meta("web-1", None, Status::Critical, 0);
    assert_eq!((host.severity, host.urgency), (Severity::Critical, Urgency::Page));
}

#[test]
fn silences_mute_what_they_match_until_they_expire() {
    let p = policy(FULL).unwrap();
    let before = p.meta("db-1", Some("disk"), Status::Critical, at("2026-11-30T23:59:00Z"));
    assert_eq!(before.muted, Some(("silence: migration".into(), at("2026-12-01T00:00:00Z"))));
    assert_eq!(p.meta("db-1", Some("disk"), Status::Critical, at("2026-12-01T00:00:00Z")).muted, None);
    assert_eq!(p.meta("web-1", Some("disk"), Status::Critical, at("2026-11-30T00:00:00Z")).muted, None);
}

#[test]
fn the_rotation_turns_weekly_and_overrides_win() {
    let p = policy(FULL).unwrap();
    let name = |t: &str| p.on_call("ops", at(t)).map(|p| p.name.clone());
    assert_eq!(name("2026-11-23T08:00:00Z").as_deref(), Some("alice"));
    assert_eq!(name("2026-11-30T07:59:59Z").as_deref(), Some("alice"));
    assert_eq!(name("2026-11-30T08:00:00Z").as_deref(), Some("bob"));
    assert_eq!(name("2026-12-07T08:00:00Z").as_deref(), Some("alice"));
    assert_eq!(name("2026-11-16T08:00:00Z").as_deref(), Some("bob"), "before the start, backwards");
    assert_eq!(name("2026-12-24T09:00:00Z").as_deref(), Some("carol"));
    let targets = p.deliveries("oncall:ops", at("2026-11-30T09:00:00Z"));
    assert_eq!(targets, [("bob".to_string(), Delivery::Webhook { url: "http://127.0.0.1:9/bob".into() })]);
    assert_eq!(p.deliveries("team:ops", 0).len(), 2);
    assert_eq!(
        p.team_channel(Some("ops")),
        [("#ops-chat".to_string(), Delivery::Slack { url: "http://127.0.0.1:9/slack".into() })]
    );
}

#[test]
fn errors_name_the_line_and_the_key() {
    let cases = [
        ("[[person]]\nname = \"a\"\nemail = \"a@example.com\"\n", "line 3: e-mail needs an [smtp] section"),
        ("[[person]]\nname = \"a\"\nwebhook = \"ftp://x\"\n", "line 3: `ftp://x` is not an http"),
        ("[[person]]\nname = \"a\"\n", "line 2: person `a` has no `email` or `webhook`"),
        ("[[team]]\nname = \"ops\"\nmembers = [\"zed\"]\n", "line 3: no [[person]] named `zed`"),
        ("[defaults]\nescalation = \"nope\"\n", "line 2: no [[escalation]] named `nope`"),
        ("[[rule]]\nchecks = \"x\"\nfailure_threshold = 0\n", "line 3: `rule.failure_threshold` must be 1 to 100"),
        ("[[rule]]\nchecks = \"x\"\nseverity = \"huge\"\n", "unknown variant `huge`"),
        ("[[rule]]\nchecks = \"x\"\nbogus = 1\n", "unknown field `bogus`"),
        ("[engine]\ngroup_window = \"soon\"\n", "line 2: `engine.group_window` `soon`"),
        (
            "[[person]]\nname = \"a\"\nwebhook = \"http://x.example\"\n[[escalation]]\nname = \"e\"\n[[escalation.step]]\nnotify = [\"pager:a\"]\nwait = \"1m\"\n",
            "line 7: target `pager:a`",
        ),
        (
            "[[person]]\nname = \"a\"\nwebhook = \"http://x.example\"\n[[escalation]]\nname = \"e\"\n[[escalation.step]]\nnotify = [\"person:b\"]\nwait = \"1m\"\n",
            "line 7: target `person:b`: no person named `b`",
        ),
        ("[[silence]]\nuntil = \"tomorrow\"\nreason = \"x\"\n", "line 2: `silence.until` `tomorrow`"),
        ("[smtp]\nserver = \"mail\"\nfrom = \"v@x\"\n", "line 2: `smtp.server` `mail` is not HOST:PORT"),
        ("[[component]]\nname = \"web\"\n[[component]]\nname = \"web\"\n", "line 4: component `web` is defined twice"),
        ("[engine]\nflap_start = 20.0\nflap_stop = 30.0\n", "line 3: flap thresholds"),
        (
            "[[maintenance]]\ncomponents = [\"x\"]\nstart = \"2026-01-01T00:00:00Z\"\nend = \"2026-01-02T00:00:00Z\"\nreason = \"r\"\n",
            "line 2: no [[component]] named `x`",
        ),
    ];
    for (text, expected) in cases {
        let error = policy(text).unwrap_err();
        assert!(error.contains(expected), "{text:?}\n  got: {error}\n  want: {expected}");
    }
}

#[test]
fn a_busy_processor_notifies_after_five_samples_unless_a_rule_says_otherwise() {
    let p = policy("").unwrap();
    for check in RESOURCE_CHECKS {
        let meta = p.meta("web-1", Some(check), Status::Critical, 0);
        assert_eq!((meta.severity, meta.urgency), (Severity::Critical, Urgency::Notify), "{check}");
        assert_eq!(p.thresholds("web-1", check).failure, 5, "{check}");
    }
    // Other checks keep the engine's defaults: a critical one pages after three.
    let meta = p.meta("web-1", Some("disk-root"), Status::Critical, 0);
    assert_eq!(meta.urgency, Urgency::Page);
    assert_eq!(p.thresholds("web-1", "cpu-temperature").failure, 3, "only the names themselves");
    // A configured rule wins over the fallback.
    let p = policy("[[rule]]\nchecks = \"cpu\"\nurgency = \"page\"\nfailure_threshold = 2\n").unwrap();
    assert_eq!(p.meta("web-1", Some("cpu"), Status::Critical, 0).urgency, Urgency::Page);
    assert_eq!(p.thresholds("web-1", "cpu").failure, 2);
    assert_eq!(p.thresholds("web-1", "load").failure, 5, "the others keep their fallback");
}

#[test]
fn the_public_url_must_be_a_link_that_cannot_break_out_of_its_place() {
    for good in [
        "https://status.example.se",
        "http://127.0.0.1:8080",
        "https://[::1]:8443/status",
        "https://status.example.se/vakt/page-1",
    ] {
        assert!(plausible_public_url(good), "{good}");
    }
    for bad in [
        "status.example.se",
        "ftp://status.example.se",
        "https://",
        "https://status example.se",
        "https://status.example.se/\"><script>",
        "https://status.example.se/a b",
        "https://exa_mple.se",
        "https://status.example.se:0",
        "https://status.example.se:99999",
        "https://[::1",
        "https://[nonsense]:80",
        "https://status.example.se/?q=1",
        "https://-bad.example.se",
        "https://status.example.se\r\nSet-Cookie: x",
    ] {
        assert!(!plausible_public_url(bad), "{bad:?}");
    }
    let err = policy("[public]\nurl = \"https://status.example.se/\\\"><b>\"\n").unwrap_err();
    assert!(err.starts_with("line 2:") && err.contains("public.url"), "{err}");
    let p = policy("[public]\nurl = \"https://status.example.se/\"\norganisation = \" Example AB \"\n").unwrap();
    assert_eq!((p.public.url.as_str(), p.public.organisation.as_str()), ("https://status.example.se", "Example AB"));
    assert!(p.public.url_configured);
    let err = policy("[public]\norganisation = \"two\\nlines\"\n").unwrap_err();
    assert!(err.contains("public.organisation"), "{err}");
}

#[test]
fn without_a_configured_url_the_page_is_where_the_collector_listens() {
    let mut p = policy("").unwrap();
    p.public.default_url("https://collector.example.se:8443/");
    assert_eq!(p.public.url, "https://collector.example.se:8443");
    let mut p = policy("[public]\nurl = \"https://status.example.se\"\n").unwrap();
    p.public.default_url("http://127.0.0.1:8080");
    assert_eq!(p.public.url, "https://status.example.se", "the configured one stays");
}

#[test]
fn a_favicon_is_a_small_png_or_ico_and_nothing_else() {
    assert_eq!(Favicon::sniff(b"\x89PNG\r\n\x1a\n....".to_vec()).unwrap().media_type, "image/png");
    assert_eq!(Favicon::sniff(vec![0, 0, 1, 0, 1, 0, 32]).unwrap().media_type, "image/x-icon");
    // An SVG could carry script, run in the page's origin when opened by itself.
    let svg = b"<svg xmlns='http://www.w3.org/2000/svg' onload='alert(1)'/>".to_vec();
    assert!(Favicon::sniff(svg).unwrap_err().contains("not a PNG or ICO"));
    assert!(Favicon::sniff(vec![0, 0, 1, 0].into_iter().chain(vec![0; FAVICON_MAX]).collect()).is_err());
    let read = |path: &std::path::Path| -> Result<Vec<u8>, String> {
        if path.ends_with("logo.png") { Ok(b"\x89PNG\r\n\x1a\nIHDR".to_vec()) } else { Err("no such file".into()) }
    };
    let text = "[public]\nfavicon = \"logo.png\"\n";
    let model: PolicyModel = toml::from_str(text).unwrap();
    assert_eq!(Policy::build(model, text, &read).unwrap().public.favicon.unwrap().media_type, "image/png");
    let text = "[public]\nfavicon = \"gone.png\"\n";
    let model: PolicyModel = toml::from_str(text).unwrap();
    let err = Policy::build(model, text, &read).unwrap_err();
    assert!(err.starts_with("line 2:") && err.contains("public.favicon"), "{err}");
}
