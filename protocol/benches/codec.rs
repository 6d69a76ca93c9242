//! `cargo bench -p protocol`: encode and decode cost of one typical result (a disk check with
//! three metrics), in both encodings, and what an enrolled agent's seal adds: `seal` on the
//! agent (at publish time) and `open` on the collector (before decoding), next to what an
//! Ed25519 signature of the same payload would cost instead (`ed25519_sign`, `ed25519_verify`,
//! ring, as the collector's signatures on acks).

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
        mac: String::new(),
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

const TOPIC: &str = "vakt/v1/agents/web-01.example.com/results/disk-root";

#[divan::bench(args = [Encoding::Bincode, Encoding::Json], name = "seal")]
fn seal_result(bencher: divan::Bencher<'_, '_>, encoding: Encoding) {
    let key = protocol::MessageKey::from_bytes([7; 32]);
    let bytes = encode(&sample(), encoding);
    bencher.with_inputs(|| bytes.clone()).bench_local_values(|mut payload| {
        protocol::seal::seal(&mut payload, black_box(TOPIC), &key);
        payload
    });
}

#[divan::bench(args = [Encoding::Bincode, Encoding::Json], name = "open")]
fn open_result(bencher: divan::Bencher<'_, '_>, encoding: Encoding) {
    let key = protocol::MessageKey::from_bytes([7; 32]);
    let mut bytes = encode(&sample(), encoding);
    protocol::seal::seal(&mut bytes, TOPIC, &key);
    bencher.bench(|| protocol::seal::open(black_box(&bytes), TOPIC, &key).unwrap());
}

#[divan::bench]
fn ed25519_sign(bencher: divan::Bencher<'_, '_>) {
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let bytes = encode(&sample(), Encoding::Bincode);
    bencher.bench(|| key.sign(black_box(&bytes)));
}

#[divan::bench]
fn ed25519_verify(bencher: divan::Bencher<'_, '_>) {
    use ring::signature::KeyPair;
    let key = ring::signature::Ed25519KeyPair::from_seed_unchecked(&[7; 32]).unwrap();
    let bytes = encode(&sample(), Encoding::Bincode);
    let signature = key.sign(&bytes);
    let public = ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, key.public_key().as_ref().to_vec());
    bencher.bench(|| public.verify(black_box(&bytes), signature.as_ref()).unwrap());
}
