//! The Debian packages on this machine, with the real `dpkg`: install, each service's command
//! run as its package's user exactly as its unit says, an upgrade while results wait in the
//! agent's spool (delivered afterwards, the epoch and the seq going on), remove (data kept),
//! purge (data gone), and `systemd-analyze verify` on the installed units.
//!
//! The packages come from `packaging/build-debs`: `.ci/run` builds them before the tests and
//! passes the directory in `VAKT_TEST_DEBS` (`previous/` and `current/`); without it the test
//! builds them itself. It needs root (it installs on this host) and leaves nothing behind.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use std::time::Duration;

use e2e::{Proc, free_port, wait_for_port};

const PACKAGES: [&str; 2] = ["vakt-agent", "vakt-collector"];
const AGENT_STATE: &str = "/var/lib/vakt-agent";
const COLLECTOR_STATE: &str = "/var/lib/vakt-collector";
const MQTT_PASSWORD: &str = "/etc/vakt/mqtt-password";

fn run(command: &mut Command) -> Output {
    let out = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    assert!(
        out.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `command`'s output, whatever its exit status.
fn run_status(command: &mut Command) -> Output {
    command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"))
}

fn dpkg(args: &[&str], debs: &[PathBuf]) {
    run(Command::new("dpkg").env("DEBIAN_FRONTEND", "noninteractive").args(args).args(debs));
}

fn installed_version(package: &str) -> String {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status} ${Version}", package]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Left while the test's packages are installed, so a later run knows that packages it finds
/// are its own (from a run that was killed) and not an operator's.
const MARKER: &str = "/var/tmp/vakt-package-test.installed";

/// Purges the packages when the test ends, passed or not, and removes what the test added.
struct Cleanup;

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = Command::new("dpkg").arg("--purge").args(PACKAGES).output();
        let _ = std::fs::remove_file(MQTT_PASSWORD);
        let _ = std::fs::remove_dir("/etc/vakt");
        let _ = std::fs::remove_file(MARKER);
    }
}

/// Refuse to touch Vakt packages this test did not install: they may be a real installation.
fn claim_the_host() -> Cleanup {
    let present = |p: &&str| {
        let status = installed_version(p);
        !status.is_empty() && !status.contains("not-installed")
    };
    let installed: Vec<&str> = PACKAGES.into_iter().filter(present).collect();
    assert!(
        installed.is_empty() || Path::new(MARKER).exists(),
        "{installed:?} installed on this host, not by this test: the package test installs and purges them; \
         remove them first or leave the test out (--skip packages::)"
    );
    std::fs::write(MARKER, "the package test's vakt packages are installed\n").unwrap();
    Cleanup
}

/// The `.deb` files of one build: (agent, collector).
fn debs_in(dir: &Path) -> [PathBuf; 2] {
    PACKAGES.map(|package| {
        let found: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .filter_map(|entry| entry.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with(&format!("{package}_")) && n.ends_with(".deb"))
            })
            .collect();
        assert_eq!(found.len(), 1, "one {package} package in {}: {found:?}", dir.display());
        found.into_iter().next().unwrap_or_default()
    })
}

/// The previous and the current build: the same code, the previous one with a lower version.
fn builds(scratch: &Path) -> ([PathBuf; 2], [PathBuf; 2]) {
    let dir = match std::env::var_os("VAKT_TEST_DEBS") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let dir = scratch.join("debs");
            let version = env!("CARGO_PKG_VERSION");
            for (sub, deb_version) in
                [("previous", format!("{version}~previous-1")), ("current", format!("{version}-1"))]
            {
                run(Command::new(e2e::root().join("packaging/build-debs"))
                    .args(["--profile", "dev", "--deb-version", &deb_version, "--out"])
                    .arg(dir.join(sub)));
            }
            dir
        }
    };
    (debs_in(&dir.join("previous")), debs_in(&dir.join("current")))
}

/// `[Service]` settings of an installed unit: every value of `key`.
fn unit_values(unit: &str, key: &str) -> Vec<String> {
    let text = std::fs::read_to_string(format!("/usr/lib/systemd/system/{unit}.service")).unwrap();
    text.lines().filter_map(|line| line.strip_prefix(&format!("{key}="))).map(str::to_string).collect()
}

/// What systemd would run for `unit`: its `ExecStart`, as its `User`/`Group` with their
/// groups, in `/`, with `HOME` from the passwd entry and the unit's `Environment` and
/// `EnvironmentFile` — and nothing from this test's environment.
fn service(unit: &str) -> Command {
    let exec = unit_values(unit, "ExecStart").pop().expect("ExecStart=");
    as_service_user(unit, &exec.split_whitespace().collect::<Vec<_>>())
}

/// `argv` run the way systemd runs `unit`'s command (see [`service`]).
fn as_service_user(unit: &str, argv: &[&str]) -> Command {
    let user = unit_values(unit, "User").pop().expect("User=");
    let group = unit_values(unit, "Group").pop().expect("Group=");
    let passwd = String::from_utf8(run(Command::new("getent").args(["passwd", &user])).stdout).unwrap();
    let home = passwd.trim().split(':').nth(5).expect("passwd home").to_string();
    let mut command = Command::new("setpriv");
    command.args(["--reuid", &user, "--regid", &group, "--init-groups", "--"]).args(argv);
    command
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", home)
        .env("USER", &user)
        .current_dir("/");
    for pair in unit_values(unit, "Environment") {
        let (key, value) = pair.split_once('=').expect("Environment=KEY=VALUE");
        command.env(key, value);
    }
    for file in unit_values(unit, "EnvironmentFile") {
        let Ok(text) = std::fs::read_to_string(file.trim_start_matches('-')) else { continue };
        for (key, value) in text.lines().filter(|l| !l.trim_start().starts_with('#')).filter_map(|l| l.split_once('='))
        {
            command.env(key.trim(), value.trim());
        }
    }
    command
}

fn spooled_bytes() -> u64 {
    std::fs::read_dir(Path::new(AGENT_STATE).join("spool"))
        .map(|dir| dir.filter_map(Result::ok).filter_map(|e| e.metadata().ok()).map(|m| m.len()).sum())
        .unwrap_or(0)
}

/// lintian finds no error or warning that the packages do not explain in their overrides.
fn lintian_is_clean(debs: &[PathBuf]) {
    // The tests' packages are dev builds, which are not stripped; `--profile release` strips.
    let out = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--suppress-tags", "unstripped-binary-or-object"])
        .args(debs)
        .output()
        .expect("running lintian (apt install lintian)");
    assert!(
        out.status.success(),
        "lintian: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The packages' changelog names the workspace version, so a release cannot ship an old one.
#[test]
fn the_package_changelog_names_the_workspace_version() {
    let changelog = std::fs::read_to_string(e2e::root().join("packaging/changelog")).unwrap();
    let first = changelog.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("vakt ({}-1) ", env!("CARGO_PKG_VERSION"))),
        "packaging/changelog begins {first:?}"
    );
}

#[test]
fn packages_install_run_upgrade_with_a_spool_remove_and_purge() {
    let uid = String::from_utf8(run(Command::new("id").arg("-u")).stdout).unwrap();
    assert_eq!(uid.trim(), "0", "the package test installs packages on this host: run it as root");
    let scratch = tempfile::tempdir().unwrap();
    let (previous, current) = builds(scratch.path());
    lintian_is_clean(&current);
    let _cleanup = claim_the_host();
    let _ = Command::new("dpkg").arg("--purge").args(PACKAGES).output();

    // Install the previous build.
    dpkg(&["--install"], &previous);
    for package in PACKAGES {
        assert!(
            installed_version(package).starts_with("install ok installed"),
            "{package}: {}",
            installed_version(package)
        );
        let unit = format!("/usr/lib/systemd/system/{package}.service");
        let verify = Command::new("systemd-analyze").args(["verify", &unit]).output().unwrap();
        assert!(verify.status.success(), "systemd-analyze verify {unit}: {}", String::from_utf8_lossy(&verify.stderr));
        // systemd's own exposure score of the unit's sandbox (0 best, 10 worst): 1.8 as
        // written; leaving out any one of ProtectSystem, ProtectHome, PrivateTmp,
        // NoNewPrivileges, CapabilityBoundingSet or SystemCallFilter raises it to 2.0 or more.
        let security = Command::new("systemd-analyze")
            .args(["security", "--offline=yes", "--threshold=18", &unit])
            .output()
            .unwrap();
        assert!(security.status.success(), "{unit} exposure above 1.8: {}", String::from_utf8_lossy(&security.stdout));
        run(Command::new("getent").args(["passwd", package]));
    }
    let conffiles =
        String::from_utf8(run(Command::new("dpkg-query").args(["-W", "-f=${Conffiles}\n"]).args(PACKAGES)).stdout)
            .unwrap();
    for file in ["/etc/vakt/agent.toml", "/etc/vakt/collector.toml", "/etc/default/vakt-collector"] {
        assert!(conffiles.contains(file), "{file} is not a conffile: {conffiles}");
    }
    let policy = std::fs::metadata("/etc/vakt/collector.toml").unwrap();
    assert_eq!(policy.mode() & 0o777, 0o640, "collector.toml may hold secrets");
    let collector_gid = std::fs::metadata(COLLECTOR_STATE).unwrap().gid();
    assert_eq!(policy.gid(), collector_gid, "collector.toml is readable by the collector's group");
    assert_eq!(std::fs::metadata(AGENT_STATE).unwrap().mode() & 0o777, 0o700);

    // The operator points the collector at ports of this test (its EnvironmentFile, a
    // conffile) and starts it once: it makes its broker password and signing key.
    let (http, mqtt) = (free_port(), free_port());
    std::fs::write(
        "/etc/default/vakt-collector",
        format!("# edited by the operator\nVAKT_HTTP_LISTEN=127.0.0.1:{http}\nVAKT_MQTT_LISTEN=127.0.0.1:{mqtt}\n"),
    )
    .unwrap();
    let log = scratch.path().join("collector.log");
    let collector = Proc::spawn("vakt-collector (packaged)", &mut service("vakt-collector"), &log);
    wait_for_port(http, Duration::from_secs(30));
    collector.stop(Duration::from_secs(20));
    let key = as_service_user("vakt-collector", &["/usr/bin/vakt-collector", "key", "--data-dir", COLLECTOR_STATE]);
    let key = String::from_utf8(run(&mut { key }).stdout).unwrap();
    let password = std::fs::read_to_string(Path::new(COLLECTOR_STATE).join("mqtt-password")).unwrap();
    std::fs::write(MQTT_PASSWORD, password).unwrap();
    run(Command::new("chown").args(["root:vakt-agent", MQTT_PASSWORD]));
    run(Command::new("chmod").args(["0640", MQTT_PASSWORD]));
    let packaged = std::fs::read_to_string("/etc/vakt/agent.toml").unwrap();
    let edited = packaged
        .replace("[agent]\n", "[agent]\nid = \"deb-01\"\n")
        .replace("interval = \"1m\"", "interval = \"1s\"")
        .replace("timeout = \"10s\"", "timeout = \"1s\"")
        + &format!(
            "\n[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt}\"\nusername = \"vakt-agent\"\npassword_file = \"{MQTT_PASSWORD}\"\ncollector_keys = [\"{}\"]\n",
            key.trim()
        );
    assert_ne!(edited, packaged);
    std::fs::write("/etc/vakt/agent.toml", &edited).unwrap();

    // The agent runs while the collector is down: its results wait in the spool.
    let agent_log = scratch.path().join("agent.log");
    let agent = Proc::spawn("vakt-agent (packaged)", &mut service("vakt-agent"), &agent_log);
    e2e::eventually(Duration::from_secs(30), || (spooled_bytes() > 2048, spooled_bytes()));
    assert!(
        agent.stop(Duration::from_secs(20)).success(),
        "{}",
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    );
    let epoch = std::fs::read_to_string(Path::new(AGENT_STATE).join("epoch")).unwrap();

    // Upgrade to the current build: the operator's edits, the spool, the epoch and the store stay.
    dpkg(&["--install"], &current);
    for package in PACKAGES {
        assert!(
            installed_version(package).ends_with(&format!("{}-1", env!("CARGO_PKG_VERSION"))),
            "{}",
            installed_version(package)
        );
    }
    assert_eq!(
        std::fs::read_to_string("/etc/vakt/agent.toml").unwrap(),
        edited,
        "the upgrade replaced an edited conffile"
    );
    assert!(std::fs::read_to_string("/etc/default/vakt-collector").unwrap().contains("edited by the operator"));
    assert_eq!(std::fs::read_to_string(Path::new(AGENT_STATE).join("epoch")).unwrap(), epoch);
    assert!(spooled_bytes() > 2048, "the upgrade emptied the spool");

    // Both services again: every result produced before the upgrade reaches the store, and
    // the agent's seq and epoch go on from where they were.
    let collector = Proc::spawn("vakt-collector (upgraded)", &mut service("vakt-collector"), &log);
    wait_for_port(http, Duration::from_secs(30));
    let agent = Proc::spawn("vakt-agent (upgraded)", &mut service("vakt-agent"), &agent_log);
    let db = Path::new(COLLECTOR_STATE).join("vakt.db");
    let seqs = e2e::eventually(Duration::from_secs(60), || {
        let seqs = e2e::with_store(&db, async |s| s.seqs("deb-01").await.unwrap());
        (seqs.len() > 40, seqs)
    });
    assert_eq!(seqs.first(), Some(&1), "the results spooled before the upgrade were not delivered");
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "a gap in the stored seqs: {seqs:?}");

    // An operator tries a check as the package's user, as `sudo -u vakt-agent` would (no unit
    // environment): it uses the daemon's compiled plugins and says nothing on stderr.
    let compiled = || std::fs::read_dir("/var/cache/vakt-agent").map(|d| d.count()).unwrap_or(0);
    let before = compiled();
    assert!(before > 0, "the daemon compiled its plugins into /var/cache/vakt-agent");
    let check = run_status(
        Command::new("setpriv")
            .args(["--reuid", "vakt-agent", "--regid", "vakt-agent", "--init-groups", "--"])
            .args(["/usr/bin/vakt-agent", "check", "load"])
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", AGENT_STATE)
            .current_dir("/"),
    );
    assert!(matches!(check.status.code(), Some(0..=2)), "{check:?}");
    assert!(String::from_utf8_lossy(&check.stdout).starts_with("LOAD "), "{check:?}");
    assert_eq!(String::from_utf8_lossy(&check.stderr), "", "no warning");
    assert_eq!(compiled(), before, "loaded from the daemon's cache, not compiled again");
    assert!(!Path::new(AGENT_STATE).join(".cache").exists(), "no second cache in its home");
    let epoch_now = std::fs::read_to_string(Path::new(AGENT_STATE).join("epoch")).unwrap();
    assert_eq!(
        epoch_now.trim().parse::<u64>().unwrap(),
        epoch.trim().parse::<u64>().unwrap() + 1,
        "the epoch started over"
    );
    agent.stop(Duration::from_secs(20));
    collector.stop(Duration::from_secs(20));

    // The installation guide's way: TLS listeners with certificates from the collector's own
    // CA, a token made as the collector's user, the agent enrolled as its own user (its key made
    // here, in its state directory), then publishing under its own certificate.
    std::fs::write(
        "/etc/default/vakt-collector",
        format!(
            "# edited by the operator\nVAKT_HTTP_LISTEN=127.0.0.1:{http}\nVAKT_MQTT_LISTEN=127.0.0.1:{mqtt}\n\
             VAKT_HTTPS=true\nVAKT_MQTT_TLS=true\n"
        ),
    )
    .unwrap();
    let collector = Proc::spawn("vakt-collector (TLS)", &mut service("vakt-collector"), &log);
    wait_for_port(http, Duration::from_secs(30));
    wait_for_port(mqtt, Duration::from_secs(30));
    let created = as_service_user(
        "vakt-collector",
        &["/usr/bin/vakt-collector", "enroll", "create", "--agents", "deb-*", "--data-dir", COLLECTOR_STATE],
    );
    let created = String::from_utf8(run(&mut { created }).stdout).unwrap();
    let line =
        created.lines().map(str::trim).find(|l| l.starts_with("vakt-agent enroll https://")).unwrap_or_else(|| {
            panic!("no enroll command printed: {created}");
        });
    let mut enroll = vec!["/usr/bin/vakt-agent"];
    enroll.extend(line.split_whitespace().skip(1));
    enroll.extend(["--id", "deb-01"]);
    run(&mut as_service_user("vakt-agent", &enroll));
    let identity = Path::new(AGENT_STATE).join("identity");
    assert_eq!(std::fs::metadata(identity.join("agent.key")).unwrap().mode() & 0o777, 0o600);
    let enrolled = edited.split("\n[mqtt]\n").next().unwrap().to_string()
        + &format!("\n[mqtt]\nurl = \"mqtts://localhost:{mqtt}\"\nidentity = \"{}\"\n", identity.display());
    std::fs::write("/etc/vakt/agent.toml", &enrolled).unwrap();
    let before = seqs.len();
    let agent = Proc::spawn("vakt-agent (enrolled)", &mut service("vakt-agent"), &agent_log);
    let more = e2e::eventually(Duration::from_secs(60), || {
        let n = e2e::with_store(&db, async |s| s.seqs("deb-01").await.unwrap()).len();
        (n >= before + 3, n)
    });
    assert!(more >= before + 3, "nothing stored under the agent's own certificate:\n{}", {
        std::fs::read_to_string(&agent_log).unwrap_or_default()
    });
    let listed = as_service_user(
        "vakt-collector",
        &["/usr/bin/vakt-collector", "agents", "list", "--data-dir", COLLECTOR_STATE],
    );
    let listed = String::from_utf8(run(&mut { listed }).stdout).unwrap();
    assert!(listed.contains("deb-01"), "{listed}");
    agent.stop(Duration::from_secs(20));
    collector.stop(Duration::from_secs(20));

    // Remove: the programs go, the configuration and the data stay.
    run(Command::new("dpkg").args(["--remove"]).args(PACKAGES));
    for package in PACKAGES {
        assert!(installed_version(package).starts_with("deinstall ok config-files"), "{}", installed_version(package));
    }
    assert!(!Path::new("/usr/bin/vakt-agent").exists() && !Path::new("/usr/bin/vakt-collector").exists());
    assert!(Path::new("/etc/vakt/agent.toml").exists() && Path::new(AGENT_STATE).join("epoch").exists() && db.exists());

    // Purge: the configuration and the data go too.
    run(Command::new("dpkg").args(["--purge"]).args(PACKAGES));
    for gone in [
        "/etc/vakt/agent.toml",
        "/etc/vakt/collector.toml",
        "/etc/default/vakt-collector",
        AGENT_STATE,
        COLLECTOR_STATE,
        "/var/cache/vakt-agent",
    ] {
        assert!(!Path::new(gone).exists(), "{gone} is still there after purge");
    }
}
