//! What an agent accepts from the broker (`protocol::trust::Gate`): for arbitrary bytes on the
//! ack, command and collector-state topics it never panics and never accepts anything (the
//! fuzzer has no key). For commands it builds from the input and signs with the trusted key,
//! the first is carried out and the same one again is refused as repeated; any byte of it
//! changed, and it is refused or (when the change left the signed content as it was) still
//! counted as a repeat.

#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use protocol::trust::Gate;
use protocol::{AgentId, CheckName, Command, CommandKind, Encoding, SigningKey, Verifier, WIRE_VERSION, encode};

fn key() -> &'static SigningKey {
    static KEY: OnceLock<SigningKey> = OnceLock::new();
    KEY.get_or_init(|| SigningKey::generate().expect("a key"))
}

fn gate() -> Gate {
    Gate::new(AgentId::new("web-01").expect("id"), Verifier::new(vec![key().public()]))
}

fuzz_target!(|data: &[u8]| {
    let now = SystemTime::now();
    let mut g = gate();
    assert!(g.ack(data, u64::MAX).is_err(), "an unsigned ack was accepted");
    assert!(g.command(data, now).is_err(), "an unsigned command was accepted");
    assert!(g.collector_state(data, now).is_err(), "an unsigned collector state was accepted");

    // A command made from the input, signed.
    let Some((&selector, rest)) = data.split_first() else { return };
    let text = String::from_utf8_lossy(rest);
    let kind = match selector % 3 {
        0 => match CheckName::new(text.chars().take(64).collect::<String>()) {
            Ok(check) => CommandKind::RunNow { check },
            Err(_) => CommandKind::Rebirth,
        },
        1 => CommandKind::ReplayFrom {
            seq: u64::from_le_bytes(
                rest.iter().copied().chain([0; 8]).take(8).collect::<Vec<_>>().try_into().unwrap_or([0; 8]),
            ) % (1 << 53),
        },
        _ => CommandKind::Rebirth,
    };
    let skew = Duration::from_millis(u64::from(selector) * 1_000);
    let mut command = Command {
        v: WIRE_VERSION,
        agent: AgentId::new("web-01").expect("id"),
        ts: now - skew,
        command: kind,
        sig: String::new(),
    };
    key().sign(&mut command);
    let encoding = if selector & 0x80 == 0 { Encoding::Json } else { Encoding::Bincode };
    let payload = encode(&command, encoding);
    let mut g = gate();
    let first = g.command(&payload, now);
    if skew <= protocol::trust::COMMAND_WINDOW {
        assert_eq!(first.as_ref().map_err(|r| r.kind), Ok(&command.command), "a fresh signed command was refused");
        assert_eq!(g.command(&payload, now).map_err(|r| r.kind), Err("repeated_command"));
    } else {
        assert_eq!(first.map_err(|r| r.kind), Err("stale_command"));
    }
    // One byte changed.
    if !payload.is_empty() && rest.len() >= 2 {
        let mut changed = payload.clone();
        let at = usize::from(rest[0]) * 256 + usize::from(rest[1]);
        let at = at % changed.len();
        changed[at] ^= 0x01 | rest[rest.len() - 1];
        if let Ok(kind) = gate().command(&changed, now) {
            assert_eq!(kind, command.command, "a changed command was carried out as another one");
        }
    }
});
