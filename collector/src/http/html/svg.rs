//! Every SVG the collector draws, in one place: the yearly report's bar charts, a check's
//! metric line charts, the status page's 90-day uptime bars and the status badges. Their text
//! (titles, labels, values) is escaped by the template like any other.

use maud::{Markup, html};

/// A bar chart: labelled bars with their values written on them (readable without colour, with
/// a title for screen readers).
pub fn bar_chart(title: &str, bars: &[(String, f64)], unit: &str) -> Markup {
    let (w, bar_h, gap, label_w) = (640.0, 22.0, 6.0, 170.0);
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max).max(1e-9);
    #[allow(clippy::cast_precision_loss)]
    let h = bars.len() as f64 * (bar_h + gap) + 30.0;
    #[allow(clippy::cast_precision_loss)]
    let y = |n: usize| 20.0 + n as f64 * (bar_h + gap);
    let len = |value: f64| (w - label_w - 80.0) * value / max;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="t" width=(w) height=(h)
            viewBox={ "0 0 " (w) " " (h) } font-family="sans-serif" font-size="13" {
            title id="t" { (title) }
            @for (n, (label, value)) in bars.iter().enumerate() {
                text x="0" y=(format!("{:.1}", y(n) + 15.0)) { (label) }
                rect x=(label_w) y=(format!("{:.1}", y(n))) width=(format!("{:.1}", len(*value))) height=(bar_h) fill="#1a5fb4" {}
                text x=(format!("{:.1}", label_w + len(*value) + 6.0)) y=(format!("{:.1}", y(n) + 15.0)) { (value) (unit) }
            }
        }
    }
}

/// A small line chart of values over time, with its range written out as its caption.
pub fn line_chart(title: &str, values: &[f64]) -> Markup {
    let (w, h) = (320.0, 60.0);
    let (min, max) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
    let span = if max > min { max - min } else { 1.0 };
    #[allow(clippy::cast_precision_loss)]
    let step = if values.len() > 1 { w / (values.len() - 1) as f64 } else { 0.0 };
    let points: Vec<String> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            #[allow(clippy::cast_precision_loss)]
            let x = i as f64 * step;
            format!("{x:.1},{:.1}", h - 4.0 - (v - min) / span * (h - 8.0))
        })
        .collect();
    let last = values.last().copied().unwrap_or(0.0);
    let label = format!("{title}: last {last}, min {min}, max {max} over {} results", values.len());
    html! {
        figure {
            svg role="img" aria-label=(label) width=(w) height=(h) viewBox={ "0 0 " (w) " " (h) } {
                title { (label) }
                polyline fill="none" stroke="#1a5fb4" stroke-width="2" points=(points.join(" ")) {}
            }
            figcaption { (label) }
        }
    }
}

/// One day of the uptime bars: its UTC date and its uptime (0 to 1), `None` without data.
#[derive(Debug, Clone, PartialEq)]
pub struct Day {
    pub date: String,
    pub uptime: Option<f64>,
}

/// The words around the uptime bars, in the page's language.
#[derive(Debug, Clone, Copy)]
pub struct BarWords<'a> {
    pub no_data: &'a str,
    /// "uptime over the last 90 days", after the total.
    pub uptime: &'a str,
    /// Said instead of the total when no day has data.
    pub no_history: &'a str,
    pub days_ago: &'a str,
    pub today: &'a str,
}

/// A percentage as the bars write it.
pub fn percent(uptime: f64) -> String {
    format!("{:.2} %", uptime * 100.0)
}

/// Daily bars, oldest first: each bar's colour and its `<title>` (the day's figure) from the
/// day's uptime; `total` written next to it in words.
pub fn uptime_bars(days: &[Day], total: Option<f64>, words: BarWords<'_>) -> Markup {
    let fill = |u: Option<f64>| match u {
        None => "#c8c8c8",
        Some(u) if u >= 0.999 => "#1b6b2f",
        Some(u) if u >= 0.99 => "#8a6100",
        Some(u) if u >= 0.95 => "#9a4500",
        Some(_) => "#a11919",
    };
    let figure = |u: Option<f64>| u.map_or_else(|| words.no_data.to_string(), percent);
    let summary = total.map_or_else(|| words.no_history.to_string(), |u| format!("{} {}", percent(u), words.uptime));
    #[allow(clippy::cast_precision_loss)]
    let width = (days.len() * 5).saturating_sub(1);
    html! {
        div.bars {
            svg role="img" aria-label=(summary) viewBox={ "0 0 " (width) " 24" } preserveAspectRatio="none" width="100%" height="24" {
                @for (n, d) in days.iter().enumerate() {
                    rect x=(n * 5) y="0" width="4" height="24" fill=(fill(d.uptime)) {
                        title { (d.date) ": " (figure(d.uptime)) }
                    }
                }
            }
            small.axis {
                span { (words.days_ago) }
                span { (summary) }
                span { (words.today) }
            }
        }
    }
}

/// A shields-style badge: `label` on grey, `value` on `color` (a `#rrggbb` chosen by the caller).
pub fn badge(label: &str, value: &str, color: &str) -> Markup {
    // Verdana 11px averages about 6.5 px per character; pad 10 px each side.
    let width = |text: &str| 10 + (text.chars().count() as u32 * 13).div_ceil(2);
    let (lw, vw) = (width(label), width(value));
    let both = format!("{label}: {value}");
    html! {
        svg xmlns="http://www.w3.org/2000/svg" width=(lw + vw) height="20" role="img" aria-label=(both) {
            title { (both) }
            rect width=(lw) height="20" fill="#444" {}
            rect x=(lw) width=(vw) height="20" fill=(color) {}
            g fill="#fff" font-family="Verdana,DejaVu Sans,sans-serif" font-size="11" text-anchor="middle" {
                text x=(lw / 2) y="14" { (label) }
                text x=(lw + vw / 2) y="14" { (value) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_escapes_its_text_and_writes_its_values() {
        let svg =
            bar_chart("Incidents <by> severity", &[("critical".into(), 1.0), ("major".into(), 2.0)], "").into_string();
        assert!(svg.starts_with("<svg") && svg.contains("&lt;by&gt;") && svg.contains(">2<"), "{svg}");
    }

    #[test]
    fn a_badge_cannot_be_broken_out_of() {
        let svg = badge("\"><script>alert(1)</script>", "ok", "#1b6b2f").into_string();
        assert!(!svg.contains("<script") && svg.contains("&quot;&gt;&lt;script&gt;"), "{svg}");
    }
}
