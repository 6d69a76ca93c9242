//! Golden tests for agent config errors: every `bad_*.toml` in `tests/fixtures/config` must
//! fail with exactly the text in the matching `.err` file, and every `good_*.toml` must load.
//! `UPDATE_GOLDEN=1 cargo test` rewrites the `.err` files.

use std::path::{Path, PathBuf};

use agent::config::AgentConfig;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/config");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn bad_configs_fail_with_the_golden_message() {
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut checked = 0;
    for path in fixtures().into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("bad_")) {
        let source = std::fs::read_to_string(&path).unwrap();
        let error =
            AgentConfig::parse(&source, Path::new("/etc/vakt")).expect_err(&format!("{} parsed", path.display()));
        let golden = path.with_extension("err");
        if update {
            std::fs::write(&golden, format!("{error}\n")).unwrap();
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        assert_eq!(error.trim_end(), expected.trim_end(), "{}", path.display());
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} bad fixtures");
}

#[test]
fn good_configs_load() {
    for path in fixtures().into_iter().filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("good_")) {
        let source = std::fs::read_to_string(&path).unwrap();
        if let Err(error) = AgentConfig::parse(&source, Path::new("/etc/vakt")) {
            panic!("{}: {error}", path.display());
        }
    }
}
