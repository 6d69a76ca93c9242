//! Plugin output crossing into the host (`protocol::text`): whatever a plugin returns, what is
//! passed on is within the caps and inert — no control or reordering character in the summary
//! and the details but the details' line breaks, no `|` to start perfdata, labels and units a
//! perfdata parser reads as one field — and a log line stays one line.

#![no_main]

use libfuzzer_sys::fuzz_target;
use protocol::text::{self, Caps, Returned};
use protocol::{Metric, Status};

fn pieces(data: &[u8]) -> Vec<String> {
    data.split(|b| *b == 0).map(|p| String::from_utf8_lossy(p).into_owned()).collect()
}

fuzz_target!(|data: &[u8]| {
    let parts = pieces(data);
    let get = |i: usize| parts.get(i).cloned().unwrap_or_default();
    let caps = Caps { summary_bytes: 64, details_bytes: 256, metrics: 4 };
    let metrics: Vec<Metric> = parts
        .iter()
        .skip(2)
        .take(6)
        .enumerate()
        .map(|(i, p)| {
            let (name, unit) = p.split_once(';').unwrap_or((p.as_str(), ""));
            Metric {
                name: name.to_string(),
                value: i as f64,
                unit: (!unit.is_empty()).then(|| unit.to_string()),
                warn: None,
                crit: None,
                min: None,
                max: None,
            }
        })
        .collect();
    let returned = Returned { status: Status::Ok, summary: get(0), details: Some(get(1)), metrics };
    if let Ok(ok) = text::check_outcome(returned, caps) {
        assert!(ok.summary.len() <= caps.summary_bytes);
        assert!(!ok.summary.chars().any(|c| text::is_unsafe(c) || c == '|'), "{:?}", ok.summary);
        let details = ok.details.unwrap_or_default();
        assert!(details.len() <= caps.details_bytes);
        assert!(!details.chars().any(|c| (text::is_unsafe(c) && c != '\n') || c == '|'), "{details:?}");
        assert!(ok.metrics.len() <= caps.metrics);
        for m in &ok.metrics {
            assert!(!m.name.is_empty() && !m.name.contains(['=', ';', '|']), "{:?}", m.name);
            assert!(!m.name.chars().any(text::is_unsafe));
            if let Some(unit) = &m.unit {
                assert!(unit.chars().all(|c| c.is_alphabetic() || "%/°µ_".contains(c)), "{unit:?}");
            }
        }
    }
    let line = text::log(&String::from_utf8_lossy(data), 4096);
    assert!(!line.contains('\n') && !line.contains('\r'), "{line:?}");
    assert!(!line.chars().any(text::is_unsafe), "{line:?}");
});
