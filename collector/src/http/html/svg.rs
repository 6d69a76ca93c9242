//! Every SVG the collector draws: the yearly report's bar charts and the status badges. Text
//! in them is escaped for XML here, once.

use std::fmt::Write as _;

use super::esc;

/// A bar chart as SVG: labelled bars with their values written on them (readable without
/// colour, with a title for screen readers).
pub fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> String {
    let (w, bar_h, gap, label_w) = (640.0, 22.0, 6.0, 170.0);
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let h = bars.len() as f64 * (bar_h + gap) + 30.0;
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-labelledby=\"t\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"13\"><title id=\"t\">{}</title>",
        esc(title)
    );
    for (n, (label, value)) in bars.iter().enumerate() {
        #[allow(clippy::cast_precision_loss)]
        let y = 20.0 + n as f64 * (bar_h + gap);
        let len = (w - label_w - 80.0) * value / max;
        let _ = write!(
            out,
            "<text x=\"0\" y=\"{:.1}\">{}</text><rect x=\"{label_w}\" y=\"{y:.1}\" width=\"{len:.1}\" height=\"{bar_h}\" fill=\"#1a5fb4\"/><text x=\"{:.1}\" y=\"{:.1}\">{value}{unit}</text>",
            y + 15.0,
            esc(label),
            label_w + len + 6.0,
            y + 15.0
        );
    }
    out.push_str("</svg>");
    out
}

/// A shields-style badge: `label` on grey, `value` on `color` (a `#rrggbb` chosen by the caller).
pub fn badge(label: &str, value: &str, color: &str) -> String {
    let (label_text, value_text) = (esc(label), esc(value));
    // Verdana 11px averages about 6.5 px per character; pad 10 px each side.
    let width = |text: &str| 10 + (text.chars().count() as u32 * 13).div_ceil(2);
    let (lw, vw) = (width(label), width(value));
    let total = lw + vw;
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label_text}: {value_text}">
<title>{label_text}: {value_text}</title>
<rect width="{lw}" height="20" fill="#444"/>
<rect x="{lw}" width="{vw}" height="20" fill="{color}"/>
<g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle">
<text x="{lx}" y="14">{label_text}</text>
<text x="{vx}" y="14">{value_text}</text>
</g>
</svg>
"##,
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_escapes_its_text_and_writes_its_values() {
        let svg = bar_chart("Incidents <by> severity", &[("critical".into(), 1.0), ("major".into(), 2.0)], "");
        assert!(svg.starts_with("<svg") && svg.contains("&lt;by&gt;") && svg.contains(">2<"), "{svg}");
    }
}
