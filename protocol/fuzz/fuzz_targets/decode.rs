//! Every decoder a collector or agent runs on bytes from the network: whatever the input, it
//! returns (never panics, never aborts on an allocation). What it accepts re-encodes: exactly
//! through bincode, and through JSON to something that decodes again (JSON keeps timestamps to
//! the millisecond, so equality is not expected there).

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::{Ack, CheckResult, CollectorState, Command, Encoding, Heartbeat, StateMessage, Topics, WireMessage};

fn round_trip<M: WireMessage + PartialEq + std::fmt::Debug>(data: &[u8]) {
    if let Ok(message) = protocol::decode::<M>(data) {
        let again = protocol::decode::<M>(&protocol::encode(&message, Encoding::Bincode));
        assert_eq!(again.as_ref(), Ok(&message));
        let json = protocol::encode(&message, Encoding::Json);
        assert!(protocol::decode::<M>(&json).is_ok(), "{}", String::from_utf8_lossy(&json));
    }
}

fuzz_target!(|data: &[u8]| {
    round_trip::<CheckResult>(data);
    round_trip::<StateMessage>(data);
    round_trip::<Heartbeat>(data);
    round_trip::<Ack>(data);
    round_trip::<Command>(data);
    round_trip::<CollectorState>(data);
    if let Ok(topic) = std::str::from_utf8(data) {
        let _ = Topics::default().parse(topic);
    }
});
