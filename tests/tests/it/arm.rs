//! The agent's ARM packages (arm64 with Cranelift and Pulley, armhf with Pulley only), run
//! under `qemu-user` on this host: the package's architecture and its binary's ELF header,
//! `vakt-agent check disk` as Nagios runs it, the backend each CPU gets and the one it cannot
//! have, and a fresh emulated host that enrols with the collector on this host and publishes
//! sealed results under its own certificate through the embedded broker's TLS listener.
//!
//! `.ci/run` builds the packages (`packaging/build-debs --target …`) and passes their directory
//! in `VAKT_TEST_ARM_DEBS` (`arm64/`, `armhf/`); without it the test builds them itself, which
//! needs the cross toolchains and rustup targets named in `packaging/build-debs --help`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{Proc, collector_binary, eventually, free_port, output_within};

/// One ARM architecture: its Debian name, rustup triple, qemu, sysroot and ELF header.
struct Arch {
    debian: &'static str,
    triple: &'static str,
    qemu: &'static str,
    sysroot: &'static str,
    /// ELF `e_machine` (EM_AARCH64, EM_ARM) and `EI_CLASS` (2: 64-bit, 1: 32-bit).
    machine: u16,
    class: u8,
    /// Whether Cranelift generates code for it.
    cranelift: bool,
}

const ARM64: Arch = Arch {
    debian: "arm64",
    triple: "aarch64-unknown-linux-gnu",
    qemu: "qemu-aarch64",
    sysroot: "/usr/aarch64-linux-gnu",
    machine: 183,
    class: 2,
    cranelift: true,
};

const ARMHF: Arch = Arch {
    debian: "armhf",
    triple: "armv7-unknown-linux-gnueabihf",
    qemu: "qemu-arm",
    sysroot: "/usr/arm-linux-gnueabihf",
    machine: 40,
    class: 1,
    cranelift: false,
};

/// Emulated runs are slow: the first compile of a plugin under qemu takes seconds.
const EMULATED: Duration = Duration::from_secs(240);

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The directory holding `arm64/` and `armhf/` packages, built here when CI did not.
fn packages(scratch: &Path) -> PathBuf {
    if let Some(dir) = std::env::var_os("VAKT_TEST_ARM_DEBS") {
        return PathBuf::from(dir);
    }
    let dir = scratch.join("arm-debs");
    for arch in [&ARM64, &ARMHF] {
        ok(&Command::new(e2e::root().join("packaging/build-debs"))
            .args(["--profile", "dev", "--target", arch.triple, "--out"])
            .arg(dir.join(arch.debian))
            .output()
            .unwrap());
    }
    dir
}

/// The agent package for `arch` in `debs`.
fn deb_of(arch: &Arch, debs: &Path) -> PathBuf {
    let dir = debs.join(arch.debian);
    let found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with("vakt-agent_")))
        .collect();
    assert_eq!(found.len(), 1, "one agent package in {}: {found:?}", dir.display());
    found.into_iter().next().unwrap_or_default()
}

/// The agent package for `arch`, unpacked under `into`: the path of its `vakt-agent`.
fn unpack(arch: &Arch, debs: &Path, into: &Path) -> PathBuf {
    let deb = &deb_of(arch, debs);
    let field = |name: &str| ok(&Command::new("dpkg-deb").arg("-f").arg(deb).arg(name).output().unwrap());
    assert_eq!(field("Architecture").trim(), arch.debian, "{}", deb.display());
    assert!(
        deb.file_name().unwrap().to_string_lossy().ends_with(&format!("_{}.deb", arch.debian)),
        "{}",
        deb.display()
    );
    ok(&Command::new("dpkg-deb").arg("-x").arg(deb).arg(into).output().unwrap());
    let binary = into.join("usr/bin/vakt-agent");
    let header = std::fs::read(&binary).unwrap();
    assert_eq!(&header[..4], b"\x7fELF", "{} is not ELF", binary.display());
    assert_eq!(header[4], arch.class, "ELF class of {}", binary.display());
    assert_eq!(u16::from_le_bytes([header[18], header[19]]), arch.machine, "ELF machine of {}", binary.display());
    binary
}

/// `vakt-agent ARGS` under the architecture's qemu, with its libraries and a compile cache
/// of its own.
fn emulated(arch: &Arch, binary: &Path, cache: &Path) -> Command {
    let mut command = Command::new(arch.qemu);
    command.arg("-L").arg(arch.sysroot).arg(binary).env("VAKT_CACHE_DIR", cache).env("VAKT_LOG", "warn");
    command
}

/// `vakt-agent check disk` under emulation, as Nagios would run it: the Nagios line with
/// perfdata and a state's exit code. With `--repeat 2` the timing line names the backend.
fn check_disk(arch: &Arch, binary: &Path, cache: &Path, backend: &str) -> (i32, String, String) {
    let out = output_within(
        emulated(arch, binary, cache).args(["check", "disk", "--set", "path=/", "--repeat", "2", "--backend", backend]),
        EMULATED,
    );
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), stdout, stderr)
}

fn nagios_disk_line(arch: &Arch, code: i32, stdout: &str, stderr: &str) {
    let first = stdout.lines().next().unwrap_or_default();
    assert!(
        (0..=2).contains(&code) && first.starts_with("DISK ") && first.contains("| 'used'="),
        "{}: exit {code}: {stdout}\n{stderr}",
        arch.debian
    );
}

#[test]
fn arm_packages_check_a_disk_under_qemu_with_the_backend_their_cpu_has() {
    let scratch = tempfile::tempdir().unwrap();
    let debs = packages(scratch.path());
    // lintian knows both architectures; the test builds are not stripped (releases are).
    let lintian = Command::new("lintian")
        .args(["--fail-on", "error,warning", "--suppress-tags", "unstripped-binary-or-object"])
        .args([&ARM64, &ARMHF].map(|arch| deb_of(arch, &debs)))
        .output()
        .expect("running lintian (apt install lintian)");
    assert!(lintian.status.success(), "lintian: {}", String::from_utf8_lossy(&lintian.stdout));
    for arch in [&ARM64, &ARMHF] {
        let root = scratch.path().join(arch.debian);
        let binary = unpack(arch, &debs, &root);
        let cache = root.join("cache");
        let (code, stdout, stderr) = check_disk(arch, &binary, &cache, "auto");
        nagios_disk_line(arch, code, &stdout, &stderr);
        let native = if arch.cranelift { "(cranelift," } else { "(pulley," };
        assert!(stderr.contains(native), "{}: auto is not {native}: {stderr}", arch.debian);
        // The interpreter gives the same answer; on arm64 it is a choice, on armhf the only one.
        let (pulley_code, pulley_out, pulley_err) = check_disk(arch, &binary, &cache, "pulley");
        nagios_disk_line(arch, pulley_code, &pulley_out, &pulley_err);
        assert!(pulley_err.contains("(pulley,"), "{}: {pulley_err}", arch.debian);
        assert_eq!(pulley_code, code, "{}: Pulley and the default disagree", arch.debian);
        let (cl_code, cl_out, cl_err) = check_disk(arch, &binary, &cache, "cranelift");
        if arch.cranelift {
            nagios_disk_line(arch, cl_code, &cl_out, &cl_err);
            assert!(cl_err.contains("(cranelift,"), "{cl_err}");
        } else {
            assert_eq!(cl_code, 3, "armhf ran Cranelift? {cl_out}{cl_err}");
            assert!(cl_out.contains("Cranelift has no code generator for arm"), "{cl_out}{cl_err}");
        }
    }
}

#[test]
fn a_fresh_arm_host_enrols_and_publishes_sealed_results_under_its_own_certificate() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let debs = packages(dir);
    let data = dir.join("data");
    let (http, mqtt) = (free_port(), free_port());
    let log = dir.join("processes.log");
    let _collector = e2e::collector_up_tls(&data, http, mqtt, &log);
    let cli =
        |args: &[&str]| ok(&Command::new(collector_binary()).args(args).arg("--data-dir").arg(&data).output().unwrap());
    let created = cli(&["enroll", "create", "--agents", "arm-*", "--uses", "2"]);
    // The printed command, as the operator pastes it on the new host.
    let line = created.lines().find(|l| l.trim_start().starts_with("vakt-agent enroll ")).unwrap().trim().to_string();
    let args: Vec<String> = line.split_whitespace().skip(2).map(|a| a.replace("127.0.0.1", "localhost")).collect();

    let mut agents = Vec::new();
    for arch in [&ARM64, &ARMHF] {
        let root = dir.join(arch.debian);
        let binary = unpack(arch, &debs, &root);
        let id = format!("arm-{}", arch.debian);
        let identity = root.join("identity");
        let cache = root.join("cache");
        let enrolled = output_within(
            emulated(arch, &binary, &cache).arg("enroll").args(&args).args(["--id", &id, "--dir"]).arg(&identity),
            EMULATED,
        );
        ok(&enrolled);
        let config = root.join("agent.toml");
        std::fs::write(
            &config,
            format!(
                "[agent]\nid = \"{id}\"\nstate_dir = \"state\"\n\
                 [mqtt]\nurl = \"mqtts://localhost:{mqtt}\"\nidentity = \"identity\"\n\
                 [[check]]\nname = \"disk\"\nplugin = \"disk\"\ninterval = \"3s\"\ntimeout = \"2s\"\n\
                 config = {{ path = \"/\" }}\n"
            ),
        )
        .unwrap();
        let agent = Proc::spawn(
            &format!("vakt-agent ({})", arch.debian),
            emulated(arch, &binary, &cache).args(["run", "--config"]).arg(&config).env("VAKT_LOG", "info"),
            &root.join("agent.log"),
        );
        agents.push((id, agent, root));
    }

    let db = data.join("vakt.db");
    for (id, _agent, root) in &agents {
        let seqs = eventually(EMULATED, || {
            let seqs = e2e::with_store(&db, async |s| s.seqs(id).await.unwrap());
            (seqs.len() >= 3, seqs)
        });
        assert!(
            seqs.len() >= 3 && seqs[..3] == [1, 2, 3],
            "{id}: stored seqs {seqs:?}\n{}\n{}",
            std::fs::read_to_string(root.join("agent.log")).unwrap_or_default(),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        let history = e2e::with_store(&db, async |s| s.check_history(id, "disk", 10).await.unwrap());
        assert!(history.iter().all(|r| r.metrics.iter().any(|m| m.name == "used")), "{id}: {history:?}");
    }
    // Enrolled with their own certificates, their version recorded; nothing refused: every
    // message was sealed with the key each got at enrolment.
    let listed = cli(&["agents", "list"]);
    for (id, _, _) in &agents {
        assert!(listed.contains(id.as_str()), "{listed}");
    }
    let metrics =
        Command::new("curl").args(["-sk", "-m", "10", &format!("https://127.0.0.1:{http}/metrics")]).output().unwrap();
    let metrics = String::from_utf8_lossy(&metrics.stdout);
    let dropped: Vec<&str> = metrics.lines().filter(|l| l.starts_with("vakt_ingest_dropped_total{")).collect();
    assert!(dropped.iter().all(|l| l.ends_with(" 0")), "{dropped:?}");
    for (_, agent, _) in agents {
        agent.stop(Duration::from_secs(30));
    }
}
