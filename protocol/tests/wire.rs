//! The documented JSON forms (tests/fixtures, also quoted in the README) decode, re-encode to
//! the same bytes and survive the binary codec; arbitrary and mutated payloads never panic.

#![allow(clippy::unwrap_used)]
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use protocol::{
    Ack, AgentId, CheckName, CheckResult, CollectorState, Command, Encoding, Heartbeat, Metric, StateMessage, Status,
    WireMessage, decode, encode,
};

fn fixture(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name);
    std::fs::read_to_string(&path).unwrap().trim_end().to_string()
}

fn golden<M: WireMessage + PartialEq + std::fmt::Debug>(name: &str) {
    let text = fixture(name);
    let message: M = decode(text.as_bytes()).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(String::from_utf8(encode(&message, Encoding::Json)).unwrap(), text, "{name} re-encoded");
    assert_eq!(decode::<M>(&encode(&message, Encoding::Bincode)).unwrap(), message, "{name} through bincode");
}

#[test]
fn documented_json_forms_are_exact() {
    golden::<CheckResult>("result.json");
    golden::<StateMessage>("birth.json");
    golden::<StateMessage>("death.json");
    golden::<Heartbeat>("heartbeat.json");
    golden::<Ack>("ack.json");
    golden::<Command>("command-replay-from.json");
    golden::<Command>("command-run-now.json");
    golden::<Command>("command-rebirth.json");
    golden::<CollectorState>("collector-state.json");
}

#[test]
fn a_birth_is_not_a_death() {
    let death = fixture("death.json").replace(r#""online":false"#, r#""online":true"#);
    assert!(decode::<StateMessage>(death.as_bytes()).is_err());
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._-]{1,64}"
}

fn finite() -> impl Strategy<Value = f64> {
    prop::num::f64::NORMAL | prop::num::f64::ZERO | prop::num::f64::SUBNORMAL
}

prop_compose! {
    fn metric()(name in "[a-z_]{1,20}", value in finite(), unit in prop::option::of("[a-zA-Z%]{1,4}"),
                warn in prop::option::of(finite()), crit in prop::option::of(finite())) -> Metric {
        Metric { name, value, unit, warn, crit, min: None, max: Some(100.0) }
    }
}

prop_compose! {
    fn result()(agent in id(), check in id(), epoch in 0..=protocol::codec::MAX_COUNTER, seq in 1..=protocol::codec::MAX_COUNTER,
                ms in 0u64..4_102_444_800_000,
                status in prop::sample::select(vec![Status::Ok, Status::Warning, Status::Critical, Status::Unknown]),
                summary in ".{0,200}", details in prop::option::of(".{0,500}"), duration in 0.0f64..1e6,
                metrics in prop::collection::vec(metric(), 0..8)) -> CheckResult {
        CheckResult {
            v: 1, agent: AgentId::new(agent).unwrap(), epoch, seq, ts: UNIX_EPOCH + Duration::from_millis(ms),
            check: CheckName::new(check).unwrap(), plugin: "p".into(), status, summary, details,
            duration_ms: duration, metrics,
            mac: String::new(),
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn results_round_trip_in_both_encodings(r in result()) {
        prop_assert_eq!(&decode::<CheckResult>(&encode(&r, Encoding::Bincode)).unwrap(), &r);
        // JSON keeps milliseconds and shortest round-trip floats, so it is exact too.
        prop_assert_eq!(&decode::<CheckResult>(&encode(&r, Encoding::Json)).unwrap(), &r);
    }

    #[test]
    fn counters_no_agent_can_reach_are_refused(r in result(), over in 1..=u64::MAX - protocol::codec::MAX_COUNTER) {
        let mut huge = r;
        huge.seq = protocol::codec::MAX_COUNTER + over;
        for encoding in [Encoding::Bincode, Encoding::Json] {
            prop_assert!(matches!(decode::<CheckResult>(&encode(&huge, encoding)), Err(protocol::DecodeError::Invalid(_))));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = decode::<CheckResult>(&bytes);
        let _ = decode::<StateMessage>(&bytes);
        let _ = decode::<Heartbeat>(&bytes);
        let _ = decode::<Command>(&bytes);
    }

    #[test]
    fn mutated_binary_results_never_panic(r in result(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bin = encode(&r, Encoding::Bincode);
        let i = at.index(bin.len());
        bin[i] = byte;
        let _ = decode::<CheckResult>(&bin);
        bin.truncate(i);
        let _ = decode::<CheckResult>(&bin);
    }
}

#[test]
fn a_birth_of_ten_thousand_checks_decodes() {
    // The codec's own ceiling for a birth; on the wire about 200 KB, within the payload limit.
    let checks = (0..10_000)
        .map(|i| protocol::CheckInfo {
            check: CheckName::new(format!("check-{i}")).unwrap(),
            plugin: "disk".into(),
            sha256: String::new(),
            interval_ms: 60_000,
        })
        .collect();
    let state = StateMessage {
        v: 1,
        agent: AgentId::new("big-01").unwrap(),
        epoch: 1,
        seq: 0,
        ts: UNIX_EPOCH + Duration::from_secs(1_795_000_000),
        online: true,
        birth: Some(protocol::Birth {
            version: "0.1.0".into(),
            host: protocol::HostFacts::default(),
            checks,
            heartbeat_ms: 30_000,
            encoding: Encoding::Bincode,
        }),
        mac: String::new(),
    };
    let bin = encode(&state, Encoding::Bincode);
    assert!(bin.len() < protocol::codec::MAX_PAYLOAD, "{} bytes", bin.len());
    assert_eq!(decode::<StateMessage>(&bin).unwrap(), state);
}

#[test]
fn a_heartbeat_carries_a_bounded_config_error_in_both_encodings() {
    let with = |error: String| {
        let mut hb: Heartbeat = decode(fixture("heartbeat.json").as_bytes()).unwrap();
        hb.config_error = Some(error);
        hb
    };
    let fine = with("/etc/vakt/agent.toml: line 3: expected `]`".into());
    for encoding in [Encoding::Json, Encoding::Bincode] {
        assert_eq!(decode::<Heartbeat>(&encode(&fine, encoding)).unwrap(), fine);
        let long = with("x".repeat(protocol::codec::MAX_CONFIG_ERROR + 1));
        assert!(decode::<Heartbeat>(&encode(&long, encoding)).is_err(), "{encoding:?}");
    }
}
