//! Nagios plugin output: `SERVICE STATUS - summary | 'label'=value[unit];warn;crit;min;max`,
//! long output on the following lines, exit code 0-3. Any Vakt check can then run under
//! Nagios, Icinga or NRPE unchanged.

use protocol::{Metric, Status};

/// A number as perfdata writes it: no exponent, no trailing `.0`.
fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{}", value as i64)
    } else {
        let text = format!("{value:.6}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// `'label'=value[unit];[warn];[crit];[min];[max]`, trailing empty fields dropped.
pub fn perfdata(metric: &Metric) -> String {
    let label = metric.name.replace('\'', "''");
    let mut fields = vec![
        format!("'{label}'={}{}", number(metric.value), metric.unit.as_deref().unwrap_or("")),
        metric.warn.map(number).unwrap_or_default(),
        metric.crit.map(number).unwrap_or_default(),
        metric.min.map(number).unwrap_or_default(),
        metric.max.map(number).unwrap_or_default(),
    ];
    while fields.len() > 1 && fields.last().is_some_and(String::is_empty) {
        fields.pop();
    }
    fields.join(";")
}

/// `|` separates text from perfdata in Nagios output, so it may not appear in the text.
fn text(value: &str) -> String {
    value.replace('|', "¦")
}

/// The full plugin output: first line with perfdata, then the details.
pub fn output(service: &str, status: Status, summary: &str, details: Option<&str>, metrics: &[Metric]) -> String {
    let mut out = format!("{} {} - {}", service.to_ascii_uppercase(), status.nagios_name(), text(summary));
    if !metrics.is_empty() {
        let perf: Vec<String> = metrics.iter().map(perfdata).collect();
        out.push_str(" | ");
        out.push_str(&perf.join(" "));
    }
    if let Some(details) = details.filter(|d| !d.is_empty()) {
        out.push('\n');
        out.push_str(&text(details));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, value: f64) -> Metric {
        Metric { name: name.into(), value, unit: None, warn: None, crit: None, min: None, max: None }
    }

    #[test]
    fn matches_the_nagios_example() {
        let used = Metric {
            unit: Some("%".into()),
            warn: Some(80.0),
            crit: Some(90.0),
            min: Some(0.0),
            max: Some(100.0),
            ..metric("used", 83.0)
        };
        assert_eq!(
            output("disk", Status::Warning, "/ 83% used", None, &[used]),
            "DISK WARNING - / 83% used | 'used'=83%;80;90;0;100"
        );
    }

    #[test]
    fn empty_trailing_fields_are_dropped_and_middle_ones_kept() {
        assert_eq!(perfdata(&metric("time", 0.0123)), "'time'=0.0123");
        let m = Metric { crit: Some(5.0), ..metric("load1", 1.5) };
        assert_eq!(perfdata(&m), "'load1'=1.5;;5");
    }

    #[test]
    fn labels_and_text_are_escaped() {
        assert_eq!(perfdata(&metric("it's", 1.0)), "'it''s'=1");
        let out = output("x", Status::Ok, "a | b", Some("line | two"), &[]);
        assert_eq!(out, "X OK - a ¦ b\nline ¦ two");
    }
}
