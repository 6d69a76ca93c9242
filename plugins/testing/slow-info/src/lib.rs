//! `slow-info`: an `info` export that never answers (it spins until the agent interrupts it).
//! Proves that loading a plugin is held to the check's deadline and that one slow plugin does
//! not hold up the others' schedules. Its `run` would say OK, but it is never reached.

use std::hint::black_box;

use vakt_plugin_sdk::bindings::Guest;
use vakt_plugin_sdk::{CheckError, Info, Outcome, Status};

struct SlowInfo;

impl Guest for SlowInfo {
    fn info() -> Info {
        let mut n: u64 = 0;
        loop {
            n = black_box(n.wrapping_add(1));
        }
    }

    fn run(_config: Vec<(String, String)>) -> Result<Outcome, CheckError> {
        Ok(Outcome { status: Status::Ok, summary: "answered".into(), details: None, metrics: vec![] })
    }
}

vakt_plugin_sdk::bindings::__export_check_world!(SlowInfo with_types_in vakt_plugin_sdk::bindings);
