//! Builds the plugins workspace (`../plugins`, target wasm32-wasip2) and embeds the standard
//! plugins, so `vakt-agent` works with no plugin files on disk.
//!
//! The nested cargo gets its own target dir next to ours: sharing the outer one deadlocks on
//! its lock. Flags meant for the host build (RUSTFLAGS and friends) are cleared for the child.
//! The test plugins (`plugins/testing`) are copied next to the standard ones for the agent's
//! and the end-to-end tests; they are never embedded.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use sha2::{Digest, Sha256};

const TARGET: &str = "wasm32-wasip2";

const STANDARD: &[&str] =
    &["cpu", "memory", "swap", "load", "disk", "process", "tcp", "http", "dns", "tls-cert", "file-age", "smtp"];
const TESTING: &[&str] = &["hostile", "unprivileged", "alien", "slow-info"];

fn main() -> anyhow::Result<()> {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR")?);
    let root = manifest_dir.parent().expect("agent/ has a parent");
    let plugins = root.join("plugins");
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);

    for watched in ["sdk", "standard", "testing", "Cargo.toml", "Cargo.lock", ".cargo"] {
        println!("cargo:rerun-if-changed={}", plugins.join(watched).display());
    }
    println!("cargo:rerun-if-changed={}", root.join("wit").display());

    ensure_target()?;

    // OUT_DIR is <target>/<profile>/build/agent-<hash>/out, or <target>/<triple>/<profile>/…
    // when cross-compiling; the plugins get <target>/wasm-plugins, shared by every profile and
    // every target (WebAssembly is the same for all), so a release or an ARM build does not
    // rebuild them.
    let triple = env::var("TARGET").unwrap_or_default();
    let target_dir = out_dir
        .ancestors()
        .nth(4)
        .map(|t| if t.file_name().is_some_and(|n| n == triple.as_str()) { t.parent().unwrap_or(t) } else { t })
        .map(|t| t.join("wasm-plugins"))
        .unwrap_or_else(|| out_dir.join("wasm-plugins"));

    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(&plugins)
        .args(["build", "--release", "--target", TARGET, "--target-dir"])
        .arg(&target_dir)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .env_remove("RUSTC_WORKSPACE_WRAPPER")
        .output()?;
    if !output.status.success() {
        anyhow::bail!(
            "building the plugins workspace ({}) failed:\n{}",
            plugins.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    let built = target_dir.join(TARGET).join("release");
    let dest = out_dir.join("plugins");
    fs::create_dir_all(&dest)?;
    // The sha256 is computed here so that loading a standard plugin whose compiled form is in
    // the cache never touches its bytes (they stay out of the agent's resident memory).
    let mut table = String::from("/// Standard plugins compiled into the agent: (name, sha256, component bytes).\n");
    table.push_str("pub(crate) const EMBEDDED: &[(&str, &str, &[u8])] = &[\n");
    for name in STANDARD {
        let file = copy_component(&built, &dest, name)?;
        let sha256 = hex::encode(Sha256::digest(fs::read(&file)?));
        writeln!(table, "    ({name:?}, {sha256:?}, include_bytes!({:?})),", file.display())?;
    }
    table.push_str("];\n");
    for name in TESTING {
        copy_component(&built, &dest, name)?;
    }
    fs::write(out_dir.join("standard_plugins.rs"), table)?;
    println!("cargo:rustc-env=VAKT_PLUGIN_BUILD_DIR={}", dest.display());
    Ok(())
}

fn copy_component(built: &Path, dest: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let file_name = format!("{}.wasm", name.replace('-', "_"));
    let from = built.join(&file_name);
    let to = dest.join(format!("{name}.wasm"));
    fs::copy(&from, &to).map_err(|e| anyhow::anyhow!("copying {}: {e}", from.display()))?;
    Ok(to)
}

/// `rustup target add` when the wasm target is missing: rustup does not fetch targets named in
/// rust-toolchain.toml by itself on these machines.
fn ensure_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    match installed {
        Ok(out) if String::from_utf8_lossy(&out.stdout).lines().any(|l| l.trim() == TARGET) => Ok(()),
        Ok(_) => {
            let status = Command::new("rustup").args(["target", "add", TARGET]).status()?;
            anyhow::ensure!(status.success(), "`rustup target add {TARGET}` failed");
            Ok(())
        }
        // No rustup (a distribution toolchain): let the nested build report a missing target.
        Err(_) => Ok(()),
    }
}
