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

/// A workspace binary of this build, rebuilt once per test run so it is never stale.
fn workspace_binary(package: &str, name: &str) -> PathBuf {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(root())
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .status()
        .expect("running cargo build");
    assert!(status.success(), "building {name} failed");
    let exe = std::env::current_exe().expect("current exe");
    let binary = exe.parent().and_then(Path::parent).expect("target dir").join(name);
    assert!(binary.exists(), "{} missing", binary.display());
    binary
}

/// The `vakt-collector` binary of this build.
pub fn collector_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| workspace_binary("collector", "vakt-collector"))
}

/// A plugin compile cache shared by every agent of this test run, so each plugin is compiled
/// once rather than once per test (the cache is safe for concurrent use).
pub fn shared_cache() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("vakt-e2e-cache-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("cache dir");
        dir
    })
}

/// The signing key of a collector whose store is in `dir` (`dir/collector.key`, made if
/// missing, exactly as the collector makes it), and its public half for agent configs.
pub fn collector_key(dir: &Path) -> (protocol::SigningKey, String) {
    let key = collector::app::identity::load_or_create(&dir.join("collector.key")).expect("collector key");
    let public = key.public().to_string();
    (key, public)
}

/// The `[mqtt]` line an agent needs to trust the collector whose store is in `dir`.
pub fn trust_collector(dir: &Path) -> String {
    format!("collector_keys = [\"{}\"]", collector_key(dir).1)
}

/// A counter or gauge from the collector's `/metrics` (0 when absent), by its full name with
/// labels, e.g. `vakt_ingest_dropped_total{reason="implausible_seq"}`.
pub fn metric(http: u16, name: &str) -> u64 {
    let body = http_get(http, "/metrics").1;
    body.lines().find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0)
}

/// GET `path` from 127.0.0.1:`port` with curl (10 s at most): the status (0 when there was
/// no answer) and the body.
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let out = Command::new("curl")
        .args(["-s", "-m", "10", "-o", "-", "-w", "\n%{http_code}", &format!("http://127.0.0.1:{port}{path}")])
        .output()
        .expect("running curl");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
    (code.trim().parse().unwrap_or(0), body.to_string())
}

/// A tmpfs of a fixed size mounted for one test (root only: CI runs as root), to fill a disk
/// under a running process. Unmounted when dropped.
#[derive(Debug)]
pub struct Tmpfs {
    pub path: PathBuf,
}

impl Tmpfs {
    /// Mount `size` (e.g. "32m") at `path`, creating it.
    pub fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "tmpfs"])
            .arg(path)
            .status()
            .expect("running mount");
        assert!(status.success(), "mounting a tmpfs at {} failed: these tests need root", path.display());
        Tmpfs { path: path.to_path_buf() }
    }

    /// Fill what is free with one file, so writes fail with ENOSPC.
    pub fn fill(&self) {
        let filler = self.path.join("filler");
        let _ = Command::new("dd")
            .args(["if=/dev/zero", "bs=64k", "status=none"])
            .arg(format!("of={}", filler.display()))
            .status();
    }

    /// Free what [`Tmpfs::fill`] took.
    pub fn unfill(&self) {
        let _ = std::fs::remove_file(self.path.join("filler"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// System calls of a running process failing with `errno` (`EIO`, `EROFS`, …) until dropped:
/// strace attached with fault injection, the way a failing or read-only disk answers. Used where
/// the kernel cannot produce the fault under a live process: it refuses to remount a file
/// system read-only while files on it are open for writing (EBUSY), and this kernel has no
/// device-mapper for an error target.
#[derive(Debug)]
pub struct Injected {
    strace: std::process::Child,
}

impl Injected {
    /// Every write, sync, truncate, open, rename and unlink on `paths` fails.
    pub fn on_files(pid: u32, errno: &str, paths: &[PathBuf]) -> Injected {
        Injected::start(pid, errno, paths, "write,pwrite64,writev,fsync,fdatasync,ftruncate,openat,rename,unlink")
    }

    /// Every sync, open, truncate, rename and unlink of the process fails, whatever the file:
    /// what a disk that went read-only or bad does to a writer whose file names are not known
    /// in advance. Plain writes succeed (into the page cache, as they would; sockets use them
    /// too) and fail at the next sync.
    pub fn on_syncs_and_opens(pid: u32, errno: &str) -> Injected {
        Injected::start(pid, errno, &[], "fsync,fdatasync,ftruncate,openat,rename,unlink")
    }

    fn start(pid: u32, errno: &str, paths: &[PathBuf], calls: &str) -> Injected {
        let mut command = Command::new("strace");
        command.args(["-f", "-qq", "-o", "/dev/null", "-p", &pid.to_string()]);
        for path in paths {
            command.arg("-P").arg(path);
        }
        command.args(["-e", &format!("trace={calls}"), "-e", &format!("inject={calls}:error={errno}")]);
        let strace =
            command.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("strace is not installed (run .ci/run)");
        // strace needs a moment to attach to every thread.
        std::thread::sleep(Duration::from_millis(500));
        Injected { strace }
    }
}

impl Drop for Injected {
    fn drop(&mut self) {
        // SIGTERM: strace detaches cleanly and the calls succeed again.
        let _ = Command::new("kill").arg(self.strace.id().to_string()).status();
        let _ = self.strace.wait();
    }
}

/// A child process that is killed when dropped.
#[derive(Debug)]
pub struct Proc {
    pub child: std::process::Child,
    pub name: String,
}

impl Proc {
    /// Spawn `command`, its stdout and stderr appended to `log`.
    pub fn spawn(name: &str, command: &mut Command, log: &Path) -> Proc {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(log).expect("log file");
        let err = out.try_clone().expect("log file");
        let child = command.stdout(out).stderr(err).spawn().unwrap_or_else(|e| panic!("spawning {name}: {e}"));
        Proc { child, name: name.to_string() }
    }

    /// Send a signal by name (`TERM`, `KILL`, `STOP`, `CONT`).
    pub fn signal(&self, signal: &str) {
        let _ = Command::new("kill").arg(format!("-{signal}")).arg(self.child.id().to_string()).status();
    }

    /// SIGTERM and wait up to `limit` for the exit; panics if it does not exit.
    pub fn stop(mut self, limit: Duration) -> std::process::ExitStatus {
        self.signal("TERM");
        let deadline = std::time::SystemTime::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting") {
                return status;
            }
            assert!(std::time::SystemTime::now() < deadline, "{} did not stop within {limit:?}", self.name);
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGKILL and reap.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Mosquitto 2 broker on a port of its own, anonymous access, loopback only.
#[derive(Debug)]
pub struct Mosquitto {
    pub port: u16,
    dir: PathBuf,
    proc: Option<Proc>,
}

impl Mosquitto {
    /// Start on a free port, logging into `dir`.
    pub fn start(dir: &Path) -> Mosquitto {
        let mut broker = Mosquitto { port: free_port(), dir: dir.to_path_buf(), proc: None };
        broker.restart();
        broker
    }

    /// Start on a free port with TLS only, requiring a client certificate signed by the CA
    /// in `ca`; the server presents `cert`/`key`.
    pub fn start_tls(dir: &Path, ca: &Path, cert: &Path, key: &Path) -> Mosquitto {
        let mut broker = Mosquitto { port: free_port(), dir: dir.to_path_buf(), proc: None };
        let tls = format!(
            "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
            ca.display(),
            cert.display(),
            key.display()
        );
        broker.launch(&tls);
        broker
    }

    /// Start on a free port with these extra lines in its config (a TLS listener's settings,
    /// an ACL file).
    pub fn start_with(dir: &Path, extra: &str) -> Mosquitto {
        let mut broker = Mosquitto { port: free_port(), dir: dir.to_path_buf(), proc: None };
        broker.launch(extra);
        broker
    }

    /// (Re)start on the same port.
    pub fn restart(&mut self) {
        self.launch("");
    }

    fn launch(&mut self, extra: &str) {
        let conf = self.dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 100000\n{extra}", self.port),
        )
        .expect("mosquitto config");
        let mosquitto = ["/usr/sbin/mosquitto", "/usr/bin/mosquitto"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .expect("mosquitto is not installed (run .ci/run, which installs it)");
        let proc =
            Proc::spawn("mosquitto", Command::new(mosquitto).arg("-c").arg(&conf), &self.dir.join("mosquitto.log"));
        wait_for_port(self.port, Duration::from_secs(10));
        self.proc = Some(proc);
    }

    /// Send the broker a signal (`STOP` freezes it with its sockets open, `CONT` thaws it).
    pub fn signal(&self, signal: &str) {
        if let Some(proc) = &self.proc {
            proc.signal(signal);
        }
    }

    /// Stop the broker (SIGKILL: nothing is flushed, as in a crash).
    pub fn kill(&mut self) {
        if let Some(proc) = self.proc.take() {
            proc.kill();
        }
    }

    /// `mqtt://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }
}

/// `vakt-collector up --no-agent --mqtt-tls --https` with its data in `data`, on 127.0.0.1
/// `http` and `mqtt`, once both listen: what listeners beyond loopback are by default, with
/// certificates from the collector's own CA (no certificate files given).
pub fn collector_up_tls(data: &Path, http: u16, mqtt: u16, log: &Path) -> Proc {
    let proc = Proc::spawn(
        "vakt-collector up",
        Command::new(collector_binary())
            .args(["up", "--no-agent", "--mqtt-tls", "--https", "--data-dir"])
            .arg(data)
            .args(["--http-listen", &format!("127.0.0.1:{http}"), "--mqtt-listen", &format!("127.0.0.1:{mqtt}")])
            .env("VAKT_LOG", "info"),
        log,
    );
    wait_for_port(http, Duration::from_secs(30));
    wait_for_port(mqtt, Duration::from_secs(30));
    proc
}

/// `vakt-collector up --no-agent` (or with its agent) in a directory of its own, on free
/// loopback ports, with `policy` as its `--config` when given, once its web side answers.
/// Killed when dropped.
#[derive(Debug)]
pub struct Up {
    pub dir: tempfile::TempDir,
    pub http: u16,
    pub mqtt: u16,
    pub proc: Proc,
}

impl Up {
    pub fn start(policy: Option<&str>) -> Up {
        Up::start_full(policy, false)
    }

    /// With `up`'s own agent checking this host too, when `agent`.
    pub fn start_full(policy: Option<&str>, agent: bool) -> Up {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let (http, mqtt) = (free_port(), free_port());
        let mut command = Command::new(collector_binary());
        command.arg("up").args(if agent { None } else { Some("--no-agent") }).arg("--data-dir");
        command.arg(dir.path().join("data")).args([
            "--http-listen",
            &format!("127.0.0.1:{http}"),
            "--mqtt-listen",
            &format!("127.0.0.1:{mqtt}"),
        ]);
        if let Some(policy) = policy {
            let file = dir.path().join("policy.toml");
            std::fs::write(&file, policy).expect("writing the policy");
            command.arg("--config").arg(file);
        }
        let proc = Proc::spawn("vakt-collector up", command.env("VAKT_LOG", "info"), &dir.path().join("collector.log"));
        wait_for_port(http, Duration::from_secs(30));
        Up { dir, http, mqtt, proc }
    }

    /// Its data directory.
    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `http://127.0.0.1:PORT{path}`
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.http)
    }

    /// `vakt-collector ARGS --data-dir DATA` with `stdin` piped in; its stdout. Panics unless
    /// it succeeds.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        use std::io::Write;
        let mut child = Command::new(collector_binary())
            .args(args)
            .arg("--data-dir")
            .arg(self.data())
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running vakt-collector");
        let mut input = child.stdin.take().expect("stdin");
        if let Some(text) = stdin {
            writeln!(input, "{text}").expect("writing stdin");
        }
        drop(input);
        let out = child.wait_with_output().expect("waiting for vakt-collector");
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The collector's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("collector.log")).unwrap_or_default()
    }
}

/// Where `.ci/run` installs the npm packages the tests run (`VAKT_NPM`, else
/// `~/.cache/vakt/npm`): a directory with `node_modules`.
pub fn npm_dir() -> PathBuf {
    std::env::var_os("VAKT_NPM").map(PathBuf::from).unwrap_or_else(|| {
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache"));
        cache.join("vakt/npm")
    })
}

/// Wait until something accepts TCP connections on 127.0.0.1:`port`.
pub fn wait_for_port(port: u16, limit: Duration) {
    let deadline = std::time::SystemTime::now() + limit;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::SystemTime::now() < deadline, "nothing listens on port {port} after {limit:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Poll `condition` every 100 ms for up to `limit`; the last value it returned.
pub fn eventually<T>(limit: Duration, mut condition: impl FnMut() -> (bool, T)) -> T {
    let deadline = std::time::SystemTime::now() + limit;
    loop {
        let (done, value) = condition();
        if done || std::time::SystemTime::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real SMTP server (aiosmtpd, from PyPI) on 127.0.0.1, storing what it receives in a
/// Maildir. Killed when dropped.
#[derive(Debug)]
pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    process: Option<Proc>,
    log: PathBuf,
    /// Certificate and key: STARTTLS offered and required.
    tls: Option<(PathBuf, PathBuf)>,
}

impl SmtpServer {
    fn at(dir: &Path, port: u16, tls: Option<(PathBuf, PathBuf)>) -> SmtpServer {
        SmtpServer { port, maildir: dir.join("maildir"), process: None, log: dir.join("smtp.log"), tls }
    }

    /// Start on a free port.
    pub fn start(dir: &Path) -> SmtpServer {
        let mut server = SmtpServer::at(dir, free_port(), None);
        server.restart();
        server
    }

    /// Start on a free port, requiring STARTTLS with this certificate and key.
    pub fn start_starttls(dir: &Path, cert: &Path, key: &Path) -> SmtpServer {
        let mut server = SmtpServer::at(dir, free_port(), Some((cert.to_path_buf(), key.to_path_buf())));
        server.restart();
        server
    }

    /// A server that is not running yet, to be started on `port` with `restart`.
    pub fn stopped_on(dir: &Path, port: u16) -> SmtpServer {
        SmtpServer::at(dir, port, None)
    }

    /// (Re)start on the same port and Maildir.
    pub fn restart(&mut self) {
        self.stop();
        let mut command = Command::new("python3");
        command.args(["-m", "aiosmtpd", "-n", "-l"]).arg(format!("127.0.0.1:{}", self.port));
        if let Some((cert, key)) = &self.tls {
            command.arg("--tlscert").arg(cert).arg("--tlskey").arg(key);
        }
        command.args(["-c", "aiosmtpd.handlers.Mailbox"]).arg(&self.maildir);
        let process = Proc::spawn("aiosmtpd", &mut command, &self.log);
        self.process = Some(process);
        wait_for_port(self.port, Duration::from_secs(20));
    }

    pub fn stop(&mut self) {
        if let Some(p) = self.process.take() {
            p.kill();
        }
    }

    /// Every message received so far, as raw text, oldest first.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<(std::time::SystemTime, PathBuf)> = ["new", "cur"]
            .iter()
            .filter_map(|sub| std::fs::read_dir(self.maildir.join(sub)).ok())
            .flatten()
            .filter_map(|e| e.ok())
            .map(|e| (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path()))
            .collect();
        files.sort();
        files.into_iter().filter_map(|(_, p)| std::fs::read_to_string(p).ok()).collect()
    }

    /// Messages addressed to `to`.
    pub fn messages_to(&self, to: &str) -> Vec<String> {
        self.messages().into_iter().filter(|m| m.lines().any(|l| l.starts_with("To:") && l.contains(to))).collect()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// One request a [`WebhookReceiver`] got.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    pub body: String,
    pub at: std::time::SystemTime,
    /// The status it was answered with.
    pub status: u16,
}

/// A local HTTP server that records every POST and answers with a status the test sets.
#[derive(Debug, Clone)]
pub struct WebhookReceiver {
    pub port: u16,
    received: std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
    /// Answer the next N requests with 500.
    fail_next: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl WebhookReceiver {
    pub fn start() -> WebhookReceiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind webhook receiver");
        let port = listener.local_addr().expect("address").port();
        let receiver = WebhookReceiver { port, received: Default::default(), fail_next: Default::default() };
        let inner = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let inner = inner.clone();
                std::thread::spawn(move || inner.serve(stream));
            }
        });
        receiver
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer the next `n` requests with HTTP 500.
    pub fn fail_next(&self, n: usize) {
        self.fail_next.store(n, std::sync::atomic::Ordering::SeqCst);
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// Bodies of the requests to `path` answered with 2xx, parsed as JSON.
    pub fn json(&self, path: &str) -> Vec<serde_json::Value> {
        self.received()
            .into_iter()
            .filter(|r| r.path == path && r.status < 300)
            .filter_map(|r| serde_json::from_str(&r.body).ok())
            .collect()
    }

    fn serve(&self, stream: std::net::TcpStream) {
        use std::io::{BufRead, BufReader, Read, Write};
        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
        let mut reader = BufReader::new(match stream.try_clone() {
            Ok(s) => s,
            Err(_) => return,
        });
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            return;
        }
        let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let mut length = 0usize;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).is_err() || header.trim().is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':')
                && name.eq_ignore_ascii_case("content-length")
            {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length.min(1 << 20)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let fail = self
            .fail_next
            .fetch_update(std::sync::atomic::Ordering::SeqCst, std::sync::atomic::Ordering::SeqCst, |n| {
                n.checked_sub(1)
            })
            .is_ok();
        let status = if fail { 500 } else { 200 };
        if let Ok(mut r) = self.received.lock() {
            r.push(Received {
                path,
                body: String::from_utf8_lossy(&body).into_owned(),
                at: std::time::SystemTime::now(),
                status,
            });
        }
        let reason = if fail { "Internal Server Error" } else { "OK" };
        let mut stream = stream;
        let _ = write!(stream, "HTTP/1.1 {status} {reason}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    }
}

/// Run `f` on the collector's database at `db` (SQLite in WAL mode: reading next to a
/// running collector is fine).
pub fn with_store<T>(db: &Path, f: impl AsyncFnOnce(collector::store::Store) -> T) -> T {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    runtime.block_on(async {
        let store = collector::store::Store::open(db).await.expect("opening the store");
        f(store).await
    })
}

/// A fake agent speaking the wire protocol directly over MQTT, for results a real plugin
/// would not produce on demand (10,000 checks, duplicates, wild timestamps, flapping).
pub struct FakeAgent {
    client: rumqttc::Client,
    topics: protocol::Topics,
    pub id: protocol::AgentId,
    pub epoch: u64,
    pub seq: u64,
    /// Seal everything sent with this key (an enrolled agent's, or someone else's).
    pub seal: Option<protocol::MessageKey>,
}

impl std::fmt::Debug for FakeAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAgent").field("id", &self.id).field("seq", &self.seq).finish()
    }
}

impl FakeAgent {
    /// Connect to the broker at 127.0.0.1:`port` as agent `id` (epoch 1).
    pub fn connect(port: u16, id: &str) -> FakeAgent {
        let mut options = rumqttc::MqttOptions::new(format!("fake-{id}"), "127.0.0.1", port);
        options.set_keep_alive(Duration::from_secs(30)).set_max_packet_size(1 << 20, 1 << 20).set_inflight(1000);
        let (client, mut connection) = rumqttc::Client::new(options, 20_000);
        std::thread::spawn(move || {
            for event in connection.iter() {
                if event.is_err() {
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        });
        FakeAgent {
            client,
            topics: protocol::Topics::default(),
            id: protocol::AgentId::new(id).expect("agent id"),
            epoch: 1,
            seq: 0,
            seal: None,
        }
    }

    fn send(&self, topic: String, mut payload: Vec<u8>, retain: bool) {
        if let Some(key) = &self.seal {
            protocol::seal::seal(&mut payload, &topic, key);
        }
        self.send_raw(topic, payload, retain);
    }

    /// Publish these bytes as they are (a replay of something captured).
    pub fn send_raw(&self, topic: String, payload: Vec<u8>, retain: bool) {
        self.client.publish(topic, rumqttc::QoS::AtLeastOnce, retain, payload).expect("publish");
    }

    /// Publish any wire message on `topic`, as this agent or posing as another.
    pub fn send_message<M: protocol::WireMessage>(&self, topic: String, message: &M) {
        self.send(topic, protocol::encode(message, protocol::Encoding::Bincode), false);
    }

    /// The topic tree this agent publishes in.
    pub fn topics(&self) -> &protocol::Topics {
        &self.topics
    }

    /// A birth listing `checks` (name, interval ms), heartbeats every `heartbeat_ms`.
    pub fn birth(&mut self, checks: &[(&str, u64)], heartbeat_ms: u64) {
        let birth = protocol::Birth {
            version: "fake".into(),
            host: protocol::HostFacts::default(),
            checks: checks
                .iter()
                .map(|(name, interval)| protocol::CheckInfo {
                    check: protocol::CheckName::new(*name).expect("check name"),
                    plugin: "fake".into(),
                    sha256: String::new(),
                    interval_ms: *interval,
                })
                .collect(),
            heartbeat_ms,
            encoding: protocol::Encoding::Bincode,
        };
        let state = protocol::StateMessage {
            v: protocol::WIRE_VERSION,
            agent: self.id.clone(),
            epoch: self.epoch,
            seq: self.seq,
            ts: std::time::SystemTime::now(),
            online: true,
            birth: Some(birth),
            mac: String::new(),
        };
        self.send(self.topics.state(&self.id), protocol::encode(&state, protocol::Encoding::Bincode), true);
    }

    /// The next result of `check` (a new seq), stamped `ts`; returns it for re-sending.
    pub fn result_at(
        &mut self,
        check: &str,
        status: protocol::Status,
        ts: std::time::SystemTime,
    ) -> protocol::CheckResult {
        self.seq += 1;
        let result = protocol::CheckResult {
            v: protocol::WIRE_VERSION,
            agent: self.id.clone(),
            epoch: self.epoch,
            seq: self.seq,
            ts,
            check: protocol::CheckName::new(check).expect("check name"),
            plugin: "fake".into(),
            status,
            summary: format!("{check} is {}", status.as_str()),
            details: None,
            duration_ms: 0.1,
            metrics: vec![],
            mac: String::new(),
        };
        self.publish(&result);
        result
    }

    /// The next result of `check`, stamped now.
    pub fn result(&mut self, check: &str, status: protocol::Status) -> protocol::CheckResult {
        self.result_at(check, status, std::time::SystemTime::now())
    }

    /// Publish a result as it is (a duplicate, or one out of order).
    pub fn publish(&self, result: &protocol::CheckResult) {
        self.send(
            self.topics.result(&self.id, &result.check),
            protocol::encode(result, protocol::Encoding::Bincode),
            false,
        );
    }
}

/// The message key `vakt-agent enroll` kept in the identity directory `dir`.
pub fn message_key(dir: &Path) -> protocol::MessageKey {
    std::fs::read_to_string(dir.join("message.key")).expect("message.key").parse().expect("a message key")
}

/// A CA, a server certificate for `localhost` and two client certificates, as PEM files in
/// `dir`: ca.pem, server.pem/.key, agent.pem/.key (CN tls-01), collector.pem/.key.
pub fn pki(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(DnType::CommonName, "Vakt test CA");
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write");
    let issuer = Issuer::new(ca_params, ca_key);
    for (name, san) in [("server", "localhost"), ("agent", "tls-01"), ("collector", "collector")] {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(vec![san.to_string()]).expect("params");
        params.distinguished_name.push(DnType::CommonName, san);
        let cert = params.signed_by(&key, &issuer).expect("certificate");
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).expect("write");
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).expect("write");
    }
}

/// A network namespace joined to this one by a veth pair: this host is 10.213.N.1, the
/// namespace 10.213.N.2, so a client there is a client from another host; its own loopback is
/// up and free, so a program there may listen on the default ports. Deleted on drop. (Root
/// only, as CI runs; `n` is unique per test.)
#[derive(Debug)]
pub struct Netns {
    pub name: String,
    pub link: String,
    pub host: String,
}

impl Netns {
    pub fn create(n: u8) -> Netns {
        let id = std::process::id() % 100_000;
        let netns =
            Netns { name: format!("vakt-t{id}-{n}"), link: format!("vh{id}-{n}"), host: format!("10.213.{n}.1") };
        let peer = format!("vp{id}-{n}");
        let inside = format!("10.213.{n}.2/30");
        let here = format!("{}/30", netns.host);
        let steps: [&[&str]; 8] = [
            &["netns", "add", &netns.name],
            &["link", "add", &netns.link, "type", "veth", "peer", "name", &peer],
            &["link", "set", &peer, "netns", &netns.name],
            &["addr", "add", &here, "dev", &netns.link],
            &["link", "set", &netns.link, "up"],
            &["-n", &netns.name, "addr", "add", &inside, "dev", &peer],
            &["-n", &netns.name, "link", "set", &peer, "up"],
            &["-n", &netns.name, "link", "set", "lo", "up"],
        ];
        for args in steps {
            let out = Command::new("ip").args(args).output().expect("ip (iproute2)");
            assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        }
        netns
    }

    /// `program` run inside the namespace.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).arg(program);
        command
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.name]).output();
        let _ = Command::new("ip").args(["link", "del", &self.link]).output();
    }
}
