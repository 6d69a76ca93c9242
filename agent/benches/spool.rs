//! `cargo bench -p agent --bench spool`: what writing a result to the spool costs before it is
//! published (a 300-byte result, the size of a typical bincode result), with and without
//! `fsync`, and reading results back for a replay.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime};

use agent::spool::{Fsync, Spool, SpoolConfig};
use protocol::CheckName;

fn main() {
    divan::main();
}

fn spool(dir: &std::path::Path, fsync: Fsync) -> Spool {
    Spool::open(SpoolConfig { dir: dir.to_path_buf(), max_bytes: 64 << 20, max_age: Duration::from_secs(3600), fsync })
        .unwrap()
}

#[divan::bench(args = ["never", "always"], sample_count = 50, sample_size = 20)]
fn append(bencher: divan::Bencher<'_, '_>, fsync: &str) {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = spool(dir.path(), if fsync == "always" { Fsync::Always } else { Fsync::Never });
    let check = CheckName::new("disk-root").unwrap();
    let payload = vec![7u8; 300];
    bencher.bench_local(|| spool.append(&check, SystemTime::now(), |_| payload.clone()).unwrap());
}

#[divan::bench]
fn read_back_1000(bencher: divan::Bencher<'_, '_>) {
    let dir = tempfile::tempdir().unwrap();
    let mut spool = spool(dir.path(), Fsync::Never);
    let check = CheckName::new("disk-root").unwrap();
    for _ in 0..10_000 {
        spool.append(&check, SystemTime::now(), |_| vec![7u8; 300]).unwrap();
    }
    bencher.bench_local(|| spool.read_after(4_000, 1000).unwrap().len());
}
