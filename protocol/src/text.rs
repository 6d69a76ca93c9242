//! The one place where a string a plugin controls is made safe for everywhere it lands: the
//! Nagios line and its perfdata, the long output, the agent's log, the JSON on the wire, and
//! the collector's pages. It lives with the wire types because these strings become a result's
//! fields; the agent applies it where plugin output crosses into the host (`plugin::convert`
//! and the log interface), and [`check_outcome`] is that crossing without the WIT types, so it
//! can be fuzzed on its own.
//!
//! A plugin decides the bytes of its summary, details, error messages, log messages, metric
//! labels and units, what it writes to stderr (the hint shown after a trap), its `info`, and —
//! through the name section of its binary — the function names in a trap's backtrace. Each of
//! these passes through exactly one function here before anything else sees it:
//!
//! - [`line`] for text that must stay on one line (summary, errors, hints, `info` fields):
//!   line breaks and tabs become spaces, every other control character becomes U+FFFD, and
//!   `|` becomes `¦`, because Nagios splits a plugin's output from its perfdata at the first
//!   `|` and Icinga at every line's.
//! - [`block`] for the details (Nagios long output): as [`line`], but `\n` stays (a lone `\r`
//!   or `\r\n` becomes `\n`), so a forged first line cannot be made with a carriage return.
//! - [`log`] for the agent's log: nothing is dropped but nothing breaks the line either;
//!   control characters are written as escapes (`\n`, `\u{1b}`), so a log line is always one
//!   line, with the plugin's text visible as sent.
//! - [`label`] and [`unit`] for perfdata, which are refused rather than repaired: they come
//!   from the plugin's code, not from data, and a repaired label would silently become
//!   another metric.
//!
//! "Control character" includes the C1 range and the Unicode characters that move or reorder
//! text on a terminal or in an editor: line and paragraph separators and the bidirectional
//! overrides and isolates ("Trojan Source", CVE-2021-42574).

/// Characters that must never reach an output as they are.
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{061c}')
}

/// Cut to at most `limit` bytes on a character boundary.
pub fn cut(text: &str, limit: usize) -> &str {
    if text.len() <= limit {
        return text;
    }
    let mut end = limit;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// One line of text, at most `limit` bytes.
pub fn line(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit));
    for c in text.chars() {
        let c = match c {
            '\n' | '\r' | '\t' => ' ',
            '|' => '¦',
            c if is_unsafe(c) => '\u{fffd}',
            c => c,
        };
        if out.len() + c.len_utf8() > limit {
            break;
        }
        out.push(c);
    }
    out
}

/// Several lines of text (Nagios long output), at most `limit` bytes.
pub fn block(text: &str, limit: usize) -> String {
    let mut out = String::with_capacity(text.len().min(limit));
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        let c = match c {
            '\r' => {
                if chars.peek() == Some(&'\n') {
                    chars.next();
                }
                '\n'
            }
            '\n' => '\n',
            '\t' => ' ',
            '|' => '¦',
            c if is_unsafe(c) => '\u{fffd}',
            c => c,
        };
        if out.len() + c.len_utf8() > limit {
            break;
        }
        out.push(c);
    }
    out
}

/// Text for one log field: control characters escaped, at most `limit` bytes of input.
pub fn log(text: &str, limit: usize) -> String {
    let text = cut(text, limit);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if is_unsafe(c) => out.push_str(&c.escape_unicode().to_string()),
            c => out.push(c),
        }
    }
    out
}

/// Longest metric label.
pub const LABEL_BYTES: usize = 128;
/// Longest metric unit.
pub const UNIT_BYTES: usize = 16;

/// A perfdata label: refused when empty, too long, or holding a character that a perfdata
/// parser reads as structure (`=` ends the label, `;` separates thresholds, `|` starts
/// perfdata) or a control character. `'` is allowed: the Nagios line doubles it.
pub fn label(name: &str) -> Result<&str, String> {
    if name.is_empty() || name.len() > LABEL_BYTES {
        return Err(format!("metric name {:?} is empty or longer than {LABEL_BYTES} bytes", line(name, 200)));
    }
    if let Some(c) = name.chars().find(|c| matches!(c, '=' | ';' | '|') || is_unsafe(*c)) {
        return Err(format!(
            "metric name {:?} contains {}, which perfdata cannot carry",
            line(name, 200),
            c.escape_debug()
        ));
    }
    Ok(name)
}

/// A perfdata unit: letters (any script), `%`, `/`, `°`, `µ`, `_`, at most 16 bytes. Digits,
/// signs and dots would be read as part of the value; `;`, `|`, `'`, `=` and spaces as
/// structure.
pub fn unit(unit: &str) -> Result<&str, String> {
    let ok = !unit.is_empty()
        && unit.len() <= UNIT_BYTES
        && unit.chars().all(|c| c.is_alphabetic() || matches!(c, '%' | '/' | '°' | 'µ' | '_'));
    if ok {
        Ok(unit)
    } else {
        Err(format!(
            "unit {:?} is not a perfdata unit (1-{UNIT_BYTES} bytes of letters, %, /, °, µ, _)",
            line(unit, 64)
        ))
    }
}

/// The output caps of one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Longest summary, in bytes.
    pub summary_bytes: usize,
    /// Longest details, in bytes.
    pub details_bytes: usize,
    /// Most metrics.
    pub metrics: usize,
}

/// What a plugin returned, before it is trusted.
#[derive(Debug, Clone, PartialEq)]
pub struct Returned {
    /// The plugin's verdict.
    pub status: crate::Status,
    /// One line.
    pub summary: String,
    /// Long output.
    pub details: Option<String>,
    /// Perfdata.
    pub metrics: Vec<crate::Metric>,
}

/// Check a plugin's output against the caps and make its text safe: `Err` names the broken
/// rule and the plugin's output is not passed on; `Ok` holds only clean text and finite
/// numbers, within the caps.
pub fn check_outcome(returned: Returned, caps: Caps) -> Result<Returned, String> {
    if returned.summary.len() > caps.summary_bytes {
        return Err(format!("the summary is {} bytes, the limit is {}", returned.summary.len(), caps.summary_bytes));
    }
    if let Some(details) = &returned.details
        && details.len() > caps.details_bytes
    {
        return Err(format!("the details are {} bytes, the limit is {}", details.len(), caps.details_bytes));
    }
    if returned.metrics.len() > caps.metrics {
        return Err(format!("{} metrics returned, the limit is {}", returned.metrics.len(), caps.metrics));
    }
    let mut names = std::collections::HashSet::new();
    for m in &returned.metrics {
        label(&m.name)?;
        if !names.insert(m.name.as_str()) {
            return Err(format!("metric `{}` appears twice", m.name));
        }
        let numbers = [Some(m.value), m.warn, m.crit, m.min, m.max];
        if numbers.iter().flatten().any(|v| !v.is_finite()) {
            return Err(format!("metric `{}` has a value that is not a finite number", m.name));
        }
        if let Some(u) = &m.unit {
            unit(u).map_err(|why| format!("metric `{}`: {why}", m.name))?;
        }
    }
    Ok(Returned {
        status: returned.status,
        summary: line(&returned.summary, caps.summary_bytes),
        details: returned.details.map(|d| block(&d, caps.details_bytes)),
        metrics: returned.metrics,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_cannot_be_made_into_two() {
        // A forged second Nagios line, a carriage return over the first, ANSI colour, a bidi
        // override, a pipe that would start perfdata.
        let hostile = "ok\nCRITICAL - forged\rDISK OK\u{1b}[31mred\u{202e}txt | 'x'=1";
        let clean = line(hostile, 1024);
        assert_eq!(clean, "ok CRITICAL - forged DISK OK\u{fffd}[31mred\u{fffd}txt ¦ 'x'=1");
        assert!(!clean.chars().any(is_unsafe));
    }

    #[test]
    fn blocks_keep_line_breaks_only() {
        assert_eq!(block("a\r\nb\rc\nd\u{1b}e\u{85}f|g", 100), "a\nb\nc\nd\u{fffd}e\u{fffd}f¦g");
    }

    #[test]
    fn limits_cut_on_character_boundaries() {
        assert_eq!(line("åäö", 5), "åä");
        assert_eq!(block("åäö", 3), "å");
        assert_eq!(cut("åäö", 1), "");
    }

    #[test]
    fn logs_show_what_was_sent_on_one_line() {
        let text = log("x\n2099-01-01T00:00:00Z ERROR agent: forged\r\u{1b}[0m\\", 4096);
        assert_eq!(text, "x\\n2099-01-01T00:00:00Z ERROR agent: forged\\r\\u{1b}[0m\\\\");
        assert!(!text.contains('\n') && !text.contains('\r'));
    }

    #[test]
    fn labels_and_units_that_perfdata_would_misread_are_refused() {
        for bad in ["", "a=b", "a;b", "a|b", "a\nb", "a\u{1b}b", &"x".repeat(200)] {
            assert!(label(bad).is_err(), "label {bad:?}");
        }
        for good in ["used", "it's", "/var/lib", "load 1", "åäö"] {
            assert_eq!(label(good), Ok(good));
        }
        for bad in ["", "s;1;2", "s|x", "s'", "s=", "m s", "1s", "-", "5.0", "s\n", &"m".repeat(17)] {
            assert!(unit(bad).is_err(), "unit {bad:?}");
        }
        for good in ["%", "s", "ms", "B", "KiB", "req/s", "°C", "µs", "c"] {
            assert_eq!(unit(good), Ok(good));
        }
    }
}
