//! The README as a new user follows it: `vakt-collector up` with no arguments on a fresh host
//! (a network namespace of its own, so the default ports are free and nothing else listens),
//! then the commands of its "watch the wire" block exactly as they are written there.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{Netns, Proc, collector_binary, eventually, output_within, root};

/// The commands of the README's block that follows the line naming this file.
fn readme_commands() -> Vec<String> {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let marker = readme.find("tests/tests/it/readme.rs runs the commands").expect("the README marks its tested block");
    let block = &readme[marker..];
    let start = block.find("```sh\n").expect("a sh block after the marker") + "```sh\n".len();
    let end = start + block[start..].find("```").expect("the block ends");
    block[start..end]
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_string)
        .collect()
}

/// A shell on the fresh host, in `dir`, with the built binaries first on the `PATH`; its own
/// process group, so a pipeline can be stopped whole.
fn shell(host: &Netns, dir: &Path, line: &str) -> Command {
    let bin = collector_binary().parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = host.command(Path::new("bash"));
    command.args(["-c", line]).current_dir(dir).env("PATH", path).process_group(0);
    command
}

/// Stop a background shell's whole process group.
fn stop_group(proc: &Proc) {
    let _ = Command::new("kill").args(["-TERM", &format!("-{}", proc.child.id())]).output();
}

fn hostname() -> String {
    String::from_utf8(Command::new("hostname").output().unwrap().stdout).unwrap().trim().to_string()
}

#[test]
fn up_on_a_fresh_host_and_the_readmes_mqtt_commands_as_written() {
    let commands = readme_commands();
    assert_eq!(commands.len(), 3, "{commands:#?}");
    let host = Netns::create(2);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let agent = hostname();
    // A database listening on this host before the first start (a socket that accepts).
    let database = Proc::spawn(
        "a listener on 5432",
        &mut shell(
            &host,
            dir,
            "exec python3 -c 'import socket\ns = socket.socket(); s.bind((\"127.0.0.1\", 5432)); s.listen()\nwhile True: s.accept()[0].close()'",
        ),
        &dir.join("listener.log"),
    );
    let listening = eventually(Duration::from_secs(20), || {
        let probe = output_within(&mut shell(&host, dir, "exec 3<>/dev/tcp/127.0.0.1/5432"), Duration::from_secs(5));
        (probe.status.success(), probe.status.success())
    });
    assert!(listening, "the listener on 5432 did not start");
    let up_log = dir.join("up.log");
    let up = Proc::spawn("vakt-collector up", &mut shell(&host, dir, "exec vakt-collector up"), &up_log);
    let log = || std::fs::read_to_string(&up_log).unwrap_or_default();
    let get = |path: &str| {
        let out = output_within(
            &mut shell(&host, dir, &format!("curl -s -m 5 http://127.0.0.1:8080{path}")),
            Duration::from_secs(10),
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let ready = eventually(Duration::from_secs(60), || {
        let body = get("/healthz");
        (!body.is_empty(), body)
    });
    assert!(!ready.is_empty(), "up did not answer on 127.0.0.1:8080:\n{}", log());

    // The two subscriptions run in the background while the command is sent.
    let everything = dir.join("everything.out");
    let results = dir.join("results.out");
    let subscribe = |line: &str, out: &PathBuf| {
        let file = std::fs::File::create(out).unwrap();
        let mut command = shell(&host, dir, line);
        command.stdout(file).stderr(Stdio::null());
        Proc { child: command.spawn().unwrap(), name: line.to_string() }
    };
    let all = subscribe(&commands[0], &everything);
    let brief = subscribe(&commands[1], &results);
    std::thread::sleep(Duration::from_secs(1));
    let sent = output_within(&mut shell(&host, dir, &commands[2]), Duration::from_secs(30));
    assert!(
        sent.status.success(),
        "{}: {}{}",
        commands[2],
        String::from_utf8_lossy(&sent.stdout),
        String::from_utf8_lossy(&sent.stderr)
    );
    assert!(String::from_utf8_lossy(&sent.stdout).contains("RunNow"), "{}", String::from_utf8_lossy(&sent.stdout));

    // The agent runs its disk check at once, and the result reaches the jq line.
    let read = |p: &PathBuf| std::fs::read_to_string(p).unwrap_or_default();
    let ran = eventually(Duration::from_secs(30), || {
        let text = read(&results);
        (text.contains("\"check\":\"disk-root\"") && log().contains("running now, as asked"), text)
    });
    assert!(log().contains("running now, as asked"), "the agent did not run the check when asked:\n{}", log());
    for line in ran.lines() {
        let value: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{line}: {e}"));
        let keys: Vec<&String> = value.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{line}");
        assert_eq!(value["agent"], agent.as_str(), "{line}");
        assert!(["ok", "warning", "critical", "unknown"].contains(&value["status"].as_str().unwrap()), "{line}");
    }
    // Everything under vakt/v1 is JSON: the collector's retained state, the agent's birth,
    // results, heartbeats and acks (a heartbeat comes every 10 s).
    let topics = eventually(Duration::from_secs(40), || {
        let mut topics = std::collections::BTreeSet::new();
        for line in read(&everything).lines() {
            let (topic, payload) = line.split_once(' ').unwrap_or((line, ""));
            let value: serde_json::Value =
                serde_json::from_str(payload).unwrap_or_else(|e| panic!("not JSON on {topic}: {e}: {payload:?}"));
            assert!(value.is_object(), "{line}");
            topics.insert(topic.rsplit_once("/results/").map_or(topic.to_string(), |(a, _)| format!("{a}/results/…")));
        }
        (topics.len() >= 5, topics)
    });
    for expected in ["collector/state", "state", "results/…", "heartbeat", "ack"] {
        let topic = if expected == "collector/state" {
            "vakt/v1/collector/state".to_string()
        } else {
            format!("vakt/v1/agents/{agent}/{expected}")
        };
        assert!(topics.contains(&topic), "nothing on {topic}: {topics:?}");
    }
    stop_group(&all);
    stop_group(&brief);

    // The first status page shows this host's service, not how busy it is.
    let components: serde_json::Value = serde_json::from_str(&get("/api/v2/components.json")).unwrap();
    let names: Vec<&str> =
        components["components"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, [agent.as_str(), "Database (PostgreSQL)"], "a group for the host, then its service");
    let page = get("/");
    for gauge in ["cpu", "load", "memory", "swap", "disk-root"] {
        assert!(!page.contains(&format!(">{gauge}<")), "{gauge} is on the public page");
    }
    assert!(page.contains("Database (PostgreSQL)"), "{page}");

    // A clean stop says nothing is wrong.
    let status = up.stop(Duration::from_secs(30));
    assert!(status.success(), "up exited with {status}");
    let errors: Vec<String> = log().lines().filter(|l| l.contains(" ERROR ")).map(str::to_string).collect();
    assert!(errors.is_empty(), "errors in the log of a clean run:\n{}", errors.join("\n"));
    drop(database);
}
