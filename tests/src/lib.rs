//! Harness for end-to-end tests: the real `vakt-agent` binary, the example plugins of other
//! languages built from source, and helpers to run commands with a time bound.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// The repository root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ has a parent").to_path_buf()
}

/// The `vakt-agent` binary of this build, rebuilt once per test run so it is never stale.
pub fn agent_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root())
            .args(["build", "--quiet", "-p", "agent", "--bin", "vakt-agent"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building vakt-agent failed");
        // target/debug/deps/it-<hash> -> target/debug/vakt-agent
        let exe = std::env::current_exe().expect("current exe");
        let dir = exe.parent().and_then(Path::parent).expect("target dir");
        let binary = dir.join("vakt-agent");
        assert!(binary.exists(), "{} missing", binary.display());
        binary
    })
}

/// A `vakt-agent` command with an isolated compile cache.
pub fn agent(cache: &Path) -> Command {
    let mut command = Command::new(agent_binary());
    command.env("VAKT_CACHE_DIR", cache).env_remove("VAKT_LOG");
    command
}

/// Run `command`, killing it after `limit`.
pub fn output_within(command: &mut Command, limit: Duration) -> Output {
    let child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawning");
    let pid = child.id();
    let watchdog = std::thread::spawn(move || {
        std::thread::sleep(limit);
        // The child may be gone already; then this does nothing.
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
    });
    let output = child.wait_with_output().expect("waiting");
    drop(watchdog);
    output
}

/// Build one of the example plugins of another language with its own build script; the
/// result is cached per test process. Fails (never skips) when the toolchain is missing,
/// naming what to install.
pub fn example_plugin(language: &str, file: &str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<std::collections::HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(path) = built.get(language) {
        return path.clone();
    }
    let dir = std::env::temp_dir().join(format!("vakt-examples-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let out = dir.join(file);
    let script = root().join("plugins/examples").join(language).join("build.sh");
    let result = Command::new("bash")
        .arg(&script)
        .arg(&out)
        .env("VAKT_AGENT", agent_binary())
        .output()
        .expect("running the build script");
    assert!(
        result.status.success(),
        "building the {language} example failed (run .ci/run to install its toolchain):\n{}",
        String::from_utf8_lossy(&result.stderr)
    );
    built.insert(language.to_string(), out.clone());
    out
}

/// A TCP port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("free port")
}
