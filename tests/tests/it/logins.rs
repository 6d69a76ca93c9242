//! The login page against an anonymous attacker with a real HTTP client: memory that a flood
//! of failed logins cannot grow, a limiter that counts before it checks and never stops
//! counting, an account that strangers can slow down but not lock, redirects that stay on
//! this site, and refusals audited in aggregate without losing one.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use e2e::{Proc, collector_binary, eventually, free_port, wait_for_port};

const PASSWORD: &str = "a long test password";

struct Site {
    _dir: tempfile::TempDir,
    data: PathBuf,
    http: u16,
    proc: Proc,
}

impl Site {
    fn start() -> Site {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let (http, mqtt) = (free_port(), free_port());
        let proc = Proc::spawn(
            "collector-up",
            Command::new(collector_binary()).args(["up", "--no-agent", "--data-dir"]).arg(&data).args([
                "--http-listen",
                &format!("127.0.0.1:{http}"),
                "--mqtt-listen",
                &format!("127.0.0.1:{mqtt}"),
            ]),
            &dir.path().join("up.log"),
        );
        wait_for_port(http, Duration::from_secs(30));
        let site = Site { _dir: dir, data, http, proc };
        let out = site.cli(&["user", "add", "ops", "--admin", "--password-stdin"], PASSWORD);
        assert!(out.status.success() || String::from_utf8_lossy(&out.stderr).contains("exists"), "{out:?}");
        site
    }

    fn cli(&self, args: &[&str], stdin: &str) -> std::process::Output {
        let mut child = Command::new(collector_binary())
            .args(args)
            .arg("--data-dir")
            .arg(&self.data)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{stdin}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    fn db(&self) -> PathBuf {
        self.data.join("vakt.db")
    }

    /// Audit rows for logins: (outcome, detail).
    fn login_records(&self) -> Vec<(String, String)> {
        e2e::with_store(&self.db(), async |s| s.audit_records(0, 100_000).await.unwrap())
            .into_iter()
            .filter(|r| r.action == "session.login")
            .map(|r| (r.outcome, r.detail))
            .collect()
    }
}

/// POST a login from `source` (a loopback address) with curl; (status, Location, Set-Cookie
/// headers). `cookie` is sent as it is.
fn login(
    site: &Site,
    source: &str,
    user: &str,
    password: &str,
    next: &str,
    cookie: Option<&str>,
) -> (u16, String, Vec<String>) {
    let mut command = Command::new("curl");
    command.args(["-s", "-m", "30", "--interface", source, "-o", "/dev/null", "-D", "-", "-w", "%{http_code}"]);
    command.args(["--data-urlencode", &format!("user={user}"), "--data-urlencode", &format!("password={password}")]);
    command.args(["--data-urlencode", &format!("next={next}")]);
    if let Some(cookie) = cookie {
        command.args(["-H", &format!("Cookie: {cookie}")]);
    }
    let out = command.arg(format!("http://127.0.0.1:{}/login", site.http)).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let code = text.lines().last().unwrap_or("0").trim().parse().unwrap_or(0);
    let header = |name: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| {
                l.split_once(':').filter(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_string())
            })
            .collect()
    };
    (code, header("location").into_iter().next().unwrap_or_default(), header("set-cookie"))
}

fn peak_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .map(|v| v.trim().trim_end_matches(" kB").trim().parse::<u64>().unwrap_or(0))
        })
        .unwrap_or(0)
        * 1024
}

#[test]
fn a_flood_of_failed_logins_costs_bounded_memory_and_is_told_busy() {
    let site = Site::start();
    let before = peak_rss(site.proc.child.id());
    // 64 at once, from 64 addresses so the limiter does not stop them first.
    let answers: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..64)
            .map(|n| {
                let site = &site;
                scope.spawn(move || {
                    login(
                        site,
                        &format!("127.0.1.{}", n + 1),
                        &format!("nobody{n}"),
                        "wrong password here",
                        "/ops",
                        None,
                    )
                    .0
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let peak = peak_rss(site.proc.child.id());
    // Each check holds 19 MiB; one per core at once, however many arrive.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get()) as u64;
    assert!(
        peak < before + (cores + 4) * (20 << 20),
        "peak resident memory {} MiB (was {} MiB before the flood)",
        peak >> 20,
        before >> 20
    );
    assert!(answers.iter().all(|c| *c == 303 || *c == 429), "{answers:?}");
    let busy = answers.iter().filter(|c| **c == 429).count();
    assert!(busy > 0, "none was told busy: {answers:?}");
    // The busy ones are in the audit trail too, counted.
    let records = eventually(Duration::from_secs(10), || {
        let r = site.login_records();
        (collector::http::denials::Denials::represented(r.iter().map(|(_, d)| d.as_str())) >= 64, r)
    });
    assert!(records.iter().any(|(_, d)| d == "password checks busy"), "{records:?}");
    let details = records.iter().map(|(_, d)| d.as_str());
    assert_eq!(collector::http::denials::Denials::represented(details) as usize, 64, "{records:?}");
}

#[test]
fn guesses_are_counted_before_they_are_checked_and_strangers_cannot_lock_an_account() {
    let site = Site::start();
    // 41 parallel guesses for one account from 41 addresses.
    let answers: Vec<(u16, String)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..41)
            .map(|n| {
                let site = &site;
                scope.spawn(move || {
                    let (code, location, _) =
                        login(site, &format!("127.0.2.{}", n + 1), "ops", "guess number one", "/ops", None);
                    (code, location)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let checked = eventually(Duration::from_secs(10), || {
        let r = site.login_records();
        let wrong = r.iter().filter(|(_, d)| d.starts_with("wrong user name or password")).map(|(_, d)| d.as_str());
        let n = collector::http::denials::Denials::represented(wrong);
        (n >= 1, n)
    });
    assert!(
        checked <= u64::from(collector::auth::ACCOUNT_FREE_FAILURES),
        "{checked} guesses were checked: {answers:?}"
    );
    assert!(answers.iter().any(|(_, l)| l.contains("for+this+account")), "{answers:?}");
    // The owner is slowed down at most a minute by the strangers, never locked out.
    let (code, location, cookies) = login(&site, "127.0.3.1", "ops", PASSWORD, "/ops", None);
    // Without the device cookie the account delay may apply (at most a minute)...
    let device = if code == 303 && location == "/ops" {
        cookies.iter().find(|c| c.starts_with("vakt_device=")).cloned().expect("a device cookie")
    } else {
        std::thread::sleep(Duration::from_millis(
            u64::try_from(collector::auth::ACCOUNT_MAX_DELAY_MS).unwrap() + 1_000,
        ));
        let (code, location, cookies) = login(&site, "127.0.3.1", "ops", PASSWORD, "/ops", None);
        assert_eq!((code, location.as_str()), (303, "/ops"), "the owner was locked out");
        cookies.iter().find(|c| c.starts_with("vakt_device=")).cloned().expect("a device cookie")
    };
    let device = device.split(';').next().unwrap().to_string();
    // ...and more guesses come in: with its cookie the owner gets in at once.
    for n in 0..5 {
        login(&site, &format!("127.0.4.{}", n + 1), "ops", "another guess!!", "/ops", None);
    }
    let (code, location, _) = login(&site, "127.0.3.2", "ops", PASSWORD, "/ops", Some(&device));
    assert_eq!((code, location.as_str()), (303, "/ops"));
}

#[test]
fn after_login_only_paths_of_this_site_are_followed() {
    let site = Site::start();
    for (next, want) in [
        ("/ops/incidents/1", "/ops/incidents/1"),
        ("/\t/evil.example", "/ops"),
        ("//evil.example", "/ops"),
        ("/\\evil.example", "/ops"),
        ("https://evil.example/", "/ops"),
        ("/ops\r\nSet-Cookie: x=y", "/ops"),
        ("/ops\nX", "/ops"),
    ] {
        let (code, location, cookies) = login(&site, "127.0.5.1", "ops", PASSWORD, next, None);
        assert_eq!(code, 303, "{next:?}");
        assert_eq!(location, want, "{next:?}");
        assert!(cookies.iter().any(|c| c.starts_with("vakt_session=")), "{next:?}: no session");
    }
}

/// Send a refused API request and close our sending half at once, before any answer.
fn refuse_and_hang_up(port: u16, n: usize) {
    let mut socket = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let request = format!("GET /api/v1/users HTTP/1.1\r\nHost: x\r\nX-Request-Id: halfclose{n}\r\n\r\n");
    socket.write_all(request.as_bytes()).unwrap();
    socket.shutdown(std::net::Shutdown::Write).unwrap();
    let mut sink = Vec::new();
    let _ = socket.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = socket.read_to_end(&mut sink);
}

#[test]
fn a_flood_of_refusals_is_a_few_audit_rows_and_none_is_lost() {
    let site = Site::start();
    let size = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    let wal = site.data.join("vakt.db-wal");
    let before = size(&site.db()) + size(&wal);
    // 3,000 anonymous refusals as fast as one client goes, plus 300 that hang up early.
    std::thread::scope(|scope| {
        for _ in 0..4 {
            let port = site.http;
            scope.spawn(move || {
                for _ in 0..750 {
                    let _ = e2e::http_get(port, "/api/v1/audit");
                }
            });
        }
        let port = site.http;
        scope.spawn(move || (0..300).for_each(|n| refuse_and_hang_up(port, n)));
    });
    // Within a minute and a second every one of them is represented.
    let records = eventually(Duration::from_secs(75), || {
        let records = e2e::with_store(&site.db(), async |s| s.audit_records(0, 100_000).await.unwrap());
        let denied: Vec<_> = records.into_iter().filter(|r| r.outcome == "denied").collect();
        let n = collector::http::denials::Denials::represented(denied.iter().map(|r| r.detail.as_str()));
        (n >= 3_300, denied)
    });
    let represented = collector::http::denials::Denials::represented(records.iter().map(|r| r.detail.as_str()));
    assert_eq!(represented, 3_300, "refusals lost or doubled");
    assert!(records.len() <= 10, "{} rows for one flood", records.len());
    assert!(size(&site.db()) + size(&wal) < before + (1 << 20), "the store grew by a megabyte");
    let out = site.cli(&["audit", "verify"], "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}
