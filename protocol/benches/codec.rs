//! `cargo bench -p protocol`: encode and decode cost of one typical result (a disk check with
//! three metrics), in both encodings.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, UNIX_EPOCH};

use divan::black_box;
use protocol::{AgentId, CheckName, CheckResult, Encoding, Metric, Status, decode, encode};

fn main() {
    divan::main();
}

fn sample() -> CheckResult {
    CheckResult {
        v: 1,
        agent: AgentId::new("web-01.example.com").unwrap(),
        epoch: 3,
        seq: 1_842_000,
        ts: UNIX_EPOCH + Duration::from_millis(1_795_798_800_123),
        check: CheckName::new("disk-root").unwrap(),
        plugin: "disk".into(),
        status: Status::Warning,
        summary: "/ 83% used (75.4 GiB of 90.9 GiB, 15.5 GiB free)".into(),
        details: None,
        duration_ms: 0.8,
        metrics: ["used", "used_bytes", "free_bytes"]
            .iter()
            .map(|name| Metric {
                name: (*name).into(),
                value: 83.1,
                unit: Some("%".into()),
                warn: Some(80.0),
                crit: Some(90.0),
                min: Some(0.0),
                max: Some(100.0),
            })
            .collect(),
    }
}

#[divan::bench(args = [Encoding::Bincode, Encoding::Json], name = "encode")]
fn encode_result(bencher: divan::Bencher<'_, '_>, encoding: Encoding) {
    let result = sample();
    bencher.bench(|| encode(black_box(&result), encoding));
}

#[divan::bench(args = [Encoding::Bincode, Encoding::Json], name = "decode")]
fn decode_result(bencher: divan::Bencher<'_, '_>, encoding: Encoding) {
    let bytes = encode(&sample(), encoding);
    bencher.bench(|| decode::<CheckResult>(black_box(&bytes)).unwrap());
}
