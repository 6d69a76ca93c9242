//! The public status page (plain HTML, no script, status in words as well as colour), its
//! Atom and RSS feeds and the component badges, all rendered from the snapshot. Markup comes
//! from the templates in `http::html`; every name and text here is spliced as text.

use maud::{Markup, html};

use crate::http::html::feed::{self, Entry, Feed};
use crate::http::html::{layout, svg, text};
use crate::http::public::status::{
    BARS_PER_COMPONENT_UP_TO, ComponentState, Snapshot, maintenance_status, public_status, utc_day,
};
use crate::incident::Ms;
use crate::model::{DayTimes, PublicIncident, PublicUpdate};
use crate::rules::components::ComponentStatus;
use crate::rules::policy::Maintenance;
use crate::rules::time::rfc3339;
use crate::rules::words::Lang;

/// 90 daily bars for `days` (UTC day, time in each status), ending today, with the uptime
/// over the time actually tracked: "since 1 Dec" until the first tracked day is 90 days back.
pub fn uptime_bars(days: &[(String, DayTimes)], now: Ms, lang: Lang) -> Markup {
    let mut total = DayTimes::default();
    let mut first: Option<usize> = None;
    let bars: Vec<svg::Day> = (0..90)
        .map(|n| {
            let date = utc_day(now - (89 - n) * 86_400_000);
            let times = days.iter().find(|(d, _)| *d == date).map(|(_, t)| *t);
            if let Some(times) = &times {
                total.add(times);
                first = first.or(Some(usize::try_from(n).unwrap_or(0)));
            }
            svg::Day { date, uptime: times.and_then(|t| t.uptime()) }
        })
        .collect();
    let span = match first.and_then(|n| bars.get(n)).filter(|_| first != Some(0)) {
        Some(day) => {
            let since =
                crate::http::public::status::day_start(&day.date).map_or_else(String::new, |ms| lang.day(ms, now));
            format!("{} {since}", lang.word("uptime_since"))
        }
        None => lang.word("uptime").to_string(),
    };
    let words = svg::BarWords {
        no_data: lang.word("no_data"),
        uptime: &span,
        no_history: lang.word("no_history"),
        days_ago: lang.word("days_ago"),
        today: lang.word("today"),
    };
    svg::uptime_bars(&bars, total.uptime(), words)
}

/// Days of several components added up (a group's bars).
fn sum_days<'a>(lists: impl Iterator<Item = &'a Vec<(String, DayTimes)>>) -> Vec<(String, DayTimes)> {
    let mut by_day: std::collections::BTreeMap<String, DayTimes> = std::collections::BTreeMap::new();
    for list in lists {
        for (day, t) in list {
            by_day.entry(day.clone()).or_default().add(t);
        }
    }
    by_day.into_iter().collect()
}

/// A moment as the reader's language writes it, and as machines read it.
fn time(ms: Ms, now: Ms, lang: Lang) -> Markup {
    html! { time datetime=(rfc3339(ms)) { (lang.when(ms, now)) } }
}

/// Incidents not resolved publicly: what a visitor came to read, first.
fn current_html(snapshot: &Snapshot, lang: Lang) -> Markup {
    incident_list(snapshot, lang, "current", true)
}

/// Resolved incidents of the last 90 days, after everything else.
fn past_html(snapshot: &Snapshot, lang: Lang) -> Markup {
    incident_list(snapshot, lang, "past", false)
}

fn incident_list(snapshot: &Snapshot, lang: Lang, heading: &str, current: bool) -> Markup {
    let now = snapshot.generated_ms;
    let incidents: Vec<&PublicIncident> =
        snapshot.incidents.iter().filter(|i| (public_status(i) != "resolved") == current).collect();
    html! {
        @if !incidents.is_empty() {
            section aria-labelledby=(heading) {
                h2 id=(heading) { (lang.word(heading)) }
                @for i in incidents {
                    article id={ "incident-" (i.id) } {
                        h3 { (text(&i.title)) }
                        ul {
                            @for PublicUpdate { status, body, at_ms: ts, .. } in i.updates.iter().rev() {
                                li { span { strong { (lang.word(status)) } " — " (text(body)) } " " (time(*ts, now, lang)) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Maintenance in progress and to come.
fn maintenance_html(snapshot: &Snapshot, lang: Lang) -> Markup {
    let now = snapshot.generated_ms;
    let upcoming: Vec<&Maintenance> = snapshot.maintenances.iter().filter(|m| m.end > now).collect();
    let titles = |m: &Maintenance| {
        snapshot
            .components
            .iter()
            .filter(|c| m.components.contains(&c.name))
            .map(|c| c.title.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    html! {
        @if !upcoming.is_empty() {
            section aria-labelledby="maintenance" {
                h2 id="maintenance" { (lang.word("maintenance_heading")) }
                ul {
                    @for m in upcoming {
                        li id={ "maintenance-" (m.id) } {
                            span { strong { (lang.word(maintenance_status(m, now))) } " — " (text(&m.title)) " (" (text(&titles(m))) ")" }
                            " "
                            span { (time(m.start, now, lang)) " – " (time(m.end, now, lang)) }
                        }
                    }
                }
            }
        }
    }
}

/// The components and their uptime, by group.
fn components_html(snapshot: &Snapshot, lang: Lang) -> Markup {
    let t = |k: &str| lang.word(k);
    let mut groups: Vec<Option<&str>> = Vec::new();
    for c in &snapshot.components {
        if !groups.contains(&c.group.as_deref()) {
            groups.push(c.group.as_deref());
        }
    }
    // Named groups first, ungrouped components last under "Other" (when there are groups).
    groups.sort_by_key(|g| g.is_none());
    let grouped = groups.iter().any(|g| g.is_some());
    let per_component = snapshot.components.len() <= BARS_PER_COMPONENT_UP_TO;
    let no_days = Vec::new();
    let days_of = |name: &str| snapshot.uptime.get(name).unwrap_or(&no_days);
    let members = |g: Option<&str>| -> Vec<&ComponentState> {
        snapshot.components.iter().filter(|c| c.group.as_deref() == g).collect()
    };
    html! {
        section aria-labelledby="components" {
            h2 id="components" { (t("components")) }
            @if snapshot.components.is_empty() {
                p { (t("nothing_yet")) }
            }
            @for g in groups {
                @let members = members(g);
                @if grouped {
                    h3 { (text(g.unwrap_or(t("other")))) }
                    @if !per_component {
                        (uptime_bars(&sum_days(members.iter().map(|c| days_of(&c.name))), snapshot.generated_ms, lang))
                    }
                }
                ul {
                    @for c in members {
                        li {
                            div.row {
                                span {
                                    (text(&c.title))
                                    @if let Some(d) = &c.description { br; small { (text(d)) } }
                                }
                                " "
                                span class={ "status s-" (c.status.as_str()) } { (t(c.status.as_str())) }
                            }
                            @if per_component {
                                (uptime_bars(days_of(&c.name), snapshot.generated_ms, lang))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The public status page in one language: the overall status and what is going on now,
/// then the components, then maintenance, then the past.
pub fn page_html(snapshot: &Snapshot, lang: Lang) -> String {
    let t = |k: &str| lang.word(k);
    let (indicator, _) = crate::http::public::status::indicator(snapshot);
    let body = html! {
        p class={ "banner i-" (indicator) } role="status" { (t(indicator)) }
        (current_html(snapshot, lang))
        (components_html(snapshot, lang))
        (maintenance_html(snapshot, lang))
        (past_html(snapshot, lang))
    };
    let footer = html! {
        p {
            (t("updated")) " " (time(snapshot.generated_ms, snapshot.generated_ms, lang))
            " · " a href="/history.atom" { "Atom" }
            " · " a href="/history.rss" { "RSS" }
            " · " a href="/api/v2/summary.json" { "JSON" }
        }
    };
    let frame = layout::StatusFrame {
        lang: lang.code(),
        organisation: &snapshot.public.organisation,
        title: t("title"),
        language: t("language"),
        subscribe: t("subscribe_long"),
    };
    crate::http::html::document(layout::status_page(&frame, body, footer))
}

/// A shields-style SVG badge for one component: its title and its status in words.
pub fn badge_svg(component: &ComponentState) -> String {
    let value = component.status.as_str().replace('_', " ");
    let color = match component.status {
        ComponentStatus::Operational => "#1b6b2f",
        ComponentStatus::UnderMaintenance => "#23489a",
        ComponentStatus::DegradedPerformance => "#7a5600",
        ComponentStatus::PartialOutage => "#9a4500",
        ComponentStatus::MajorOutage => "#a11919",
    };
    let mut out = svg::badge(&component.title, &value, color).into_string();
    out.push('\n');
    out
}

/// RFC 2822, as RSS dates are written.
fn rfc2822(ms: Ms) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms / 1000)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc2822).ok())
        .unwrap_or_default()
}

/// The feed of public updates, one entry per update, newest incident first; every link
/// absolute under `[public] url`.
fn feed_of(snapshot: &Snapshot) -> Feed {
    let base = &snapshot.public.url;
    let mut newest = 0;
    let mut entries = Vec::new();
    for i in &snapshot.incidents {
        for PublicUpdate { id: uid, status, body, at_ms: ts } in i.updates.iter().rev() {
            newest = newest.max(*ts);
            entries.push(Entry {
                id: format!("{base}/#incident-{}-update-{uid}", i.id),
                title: format!("{} ({status})", i.title),
                link: format!("{base}/#incident-{}", i.id),
                updated: rfc3339(*ts),
                published: rfc2822(*ts),
                body: body.clone(),
            });
        }
    }
    let updated = if newest > 0 { newest } else { snapshot.generated_ms };
    Feed {
        title: format!("{} status", snapshot.public.organisation),
        id: format!("{base}/history.atom"),
        link: format!("{base}/"),
        atom_self: format!("{base}/history.atom"),
        rss_self: format!("{base}/history.rss"),
        author: snapshot.public.organisation.clone(),
        lang: "en".into(),
        description: format!("Incidents of {} and their updates", snapshot.public.organisation),
        updated: rfc3339(updated),
        built: rfc2822(updated),
        entries,
    }
}

/// Atom (`/history.atom`).
pub fn atom(snapshot: &Snapshot) -> String {
    feed::atom(&feed_of(snapshot))
}

/// RSS 2.0 (`/history.rss`).
pub fn rss(snapshot: &Snapshot) -> String {
    feed::rss(&feed_of(snapshot))
}

#[cfg(test)]
mod page_tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::http::public::statuspage::summary_json;

    #[test]
    fn uptime_bars_show_each_days_figure_and_the_total() {
        let now = 1_795_766_400_000; // 2026-11-27
        let day = |ms: Ms| utc_day(ms);
        let t = |up: i64, down: i64| DayTimes { operational: up, major: down, ..DayTimes::default() };
        let days = vec![(day(now - 86_400_000), t(99, 1)), (day(now), t(100, 0))];
        let svg = uptime_bars(&days, now, Lang::En).into_string();
        assert_eq!(svg.matches("<rect").count(), 90);
        assert!(svg.contains(&format!("<title>{}: 99.00 %</title>", day(now - 86_400_000))), "{svg}");
        assert!(svg.contains(&format!("<title>{}: 100.00 %</title>", day(now))), "{svg}");
        assert!(svg.contains(&format!("<title>{}: no data</title>", day(now - 10 * 86_400_000))));
        // Two days tracked: the figure says over what time, not "90 days".
        assert!(svg.contains("99.50 % uptime since 26 Nov"), "{svg}");
        let sv = uptime_bars(&days, now, Lang::Sv).into_string();
        assert!(sv.contains("99.50 % tillgänglighet sedan 26 nov"), "{sv}");
        // Tracked since the first of the 90 days: the full window.
        let full = vec![(day(now - 89 * 86_400_000), t(1, 0)), (day(now), t(1, 0))];
        assert!(uptime_bars(&full, now, Lang::En).into_string().contains("100.00 % uptime over the last 90 days"));
        assert!(uptime_bars(&[], now, Lang::Sv).into_string().contains("inga data för de senaste 90 dagarna än"));
    }

    #[test]
    fn the_page_says_the_status_in_words_and_escapes_names() {
        let snapshot = Snapshot {
            generated_ms: 1_795_766_400_000,
            public: crate::rules::policy::Public {
                url: "https://status.example.se".into(),
                organisation: "Example AB".into(),
                ..crate::rules::policy::Public::default()
            },
            components: vec![ComponentState {
                name: "shop".into(),
                title: "Shop <&>".into(),
                group: Some("Customer services".into()),
                description: None,
                status: ComponentStatus::PartialOutage,
                updated_ms: 0,
            }],
            maintenances: vec![],
            rendered: Arc::default(),
            uptime: Arc::default(),
            gauges: Arc::default(),
            incidents: vec![PublicIncident {
                id: 4,
                title: "Mail <delayed>".into(),
                severity: "major".into(),
                created_ms: 1_795_766_000_000,
                updates: vec![
                    PublicUpdate {
                        id: 1,
                        status: "investigating".into(),
                        body: "Looking".into(),
                        at_ms: 1_795_766_000_000,
                    },
                    PublicUpdate {
                        id: 2,
                        status: "identified".into(),
                        body: "Found it & fixing".into(),
                        at_ms: 1_795_766_100_000,
                    },
                ],
                components: vec!["shop".into()],
            }],
        };
        let sv = page_html(&snapshot, Lang::Sv);
        assert!(
            sv.contains(r#"<html lang="sv">"#) && sv.contains("Delvis avbrott") && sv.contains("Shop &lt;&amp;&gt;"),
            "{sv}"
        );
        assert!(!sv.contains("<script"), "no JavaScript");
        let en = page_html(&snapshot, Lang::En);
        assert!(en.contains("Partial system outage") && en.contains("<h3><bdi>Customer services</bdi></h3>"), "{en}");
        assert!(
            en.contains(r#"<h2 id="current">Current incidents</h2>"#)
                && en.contains("<strong>Identified</strong> — <bdi>Found it &amp; fixing</bdi>"),
            "{en}"
        );
        // Whose page it is, and subscribing, at the top; what is going on now above the
        // components; times as a reader writes them, with the machine-readable form.
        assert!(en.contains("<title>Example AB · System status</title>"), "{en}");
        assert!(en.contains(r#"<h1>Example AB <span class="sub">System status</span></h1>"#), "{en}");
        let at = |needle: &str| en.find(needle).unwrap_or_else(|| panic!("{needle} not in {en}"));
        assert!(at(r#"href="/subscribe?lang=en""#) < at("<main>"));
        assert!(at(r#"id="current""#) < at(r#"id="components""#));
        assert!(en.contains(r#"<time datetime="2026-11-27T07:55:00Z">27 Nov, 07:55 UTC</time>"#), "{en}");
        assert!(sv.contains(r#"<time datetime="2026-11-27T07:55:00Z">27 nov 07:55 UTC</time>"#), "{sv}");
        assert!(sv.contains("Pågående händelser") && sv.contains("Orsaken är identifierad"), "{sv}");
        let summary = summary_json(&snapshot);
        let incident = &summary["incidents"][0];
        assert_eq!((incident["status"].as_str(), incident["impact"].as_str()), (Some("identified"), Some("major")));
        assert_eq!(incident["incident_updates"][0]["body"], "Found it & fixing", "newest update first");
        assert_eq!(incident["components"][0]["name"], "Shop <&>");
        let atom = atom(&snapshot);
        assert!(
            atom.contains("<title>Mail &lt;delayed&gt; (identified)</title>") && atom.matches("<entry>").count() == 2,
            "{atom}"
        );
        let rss = rss(&snapshot);
        assert!(rss.contains("<pubDate>") && rss.matches("<item>").count() == 2, "{rss}");
    }

    /// What the W3C feed validator reported about the feeds, rule by rule: every link a full
    /// URL ("link must be a full and valid URL"), each feed naming itself with `atom:link
    /// rel="self"` ("Missing atom:link with rel="self""), dates in each format's own form,
    /// and what each format requires of a feed and an entry.
    #[test]
    fn the_feeds_follow_the_rules_the_w3c_validator_reported() {
        let snapshot = Snapshot {
            generated_ms: 1_795_766_400_000,
            public: crate::rules::policy::Public {
                url: "https://status.example.se/vakt".into(),
                organisation: "Example AB".into(),
                ..crate::rules::policy::Public::default()
            },
            incidents: vec![PublicIncident {
                id: 4,
                title: "Mail delayed".into(),
                severity: "major".into(),
                created_ms: 1_795_766_000_000,
                updates: vec![PublicUpdate {
                    id: 9,
                    status: "investigating".into(),
                    body: "Looking".into(),
                    at_ms: 1_795_766_000_000,
                }],
                components: vec![],
            }],
            ..Snapshot::default()
        };
        let atom = atom(&snapshot);
        for needed in [
            r#"<feed xmlns="http://www.w3.org/2005/Atom" xml:lang="en">"#,
            "<title>Example AB status</title>",
            "<id>https://status.example.se/vakt/history.atom</id>",
            r#"<link rel="alternate" type="text/html" href="https://status.example.se/vakt/"></link>"#,
            r#"<link rel="self" type="application/atom+xml" href="https://status.example.se/vakt/history.atom"></link>"#,
            "<updated>2026-11-27T07:53:20Z</updated>",
            "<author><name>Example AB</name></author>",
            "<entry><id>https://status.example.se/vakt/#incident-4-update-9</id>",
            r#"<link rel="alternate" type="text/html" href="https://status.example.se/vakt/#incident-4"></link>"#,
        ] {
            assert!(atom.contains(needed), "{needed} in {atom}");
        }
        let rss = rss(&snapshot);
        for needed in [
            r#"<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">"#,
            "<link>https://status.example.se/vakt/</link>",
            "<language>en</language>",
            "<lastBuildDate>Fri, 27 Nov 2026 07:53:20 +0000</lastBuildDate>",
            r#"<atom:link href="https://status.example.se/vakt/history.rss" rel="self" type="application/rss+xml"></atom:link>"#,
            "<item><title>Mail delayed (investigating)</title><link>https://status.example.se/vakt/#incident-4</link>",
            "<pubDate>Fri, 27 Nov 2026 07:53:20 +0000</pubDate>",
        ] {
            assert!(rss.contains(needed), "{needed} in {rss}");
        }
        // No link anywhere that is not absolute.
        for doc in [&atom, &rss] {
            for (at, _) in doc.match_indices("href=\"").chain(doc.match_indices("<link>")) {
                let rest = &doc[at..];
                let value = rest.split_once(['"', '>']).map_or("", |(_, v)| v);
                assert!(value.starts_with("https://status.example.se/vakt/"), "{rest:.80}");
            }
        }
    }

    #[test]
    fn a_badge_names_the_component_and_its_status() {
        let c = ComponentState {
            name: "shop".into(),
            title: "Web & shop".into(),
            group: None,
            description: None,
            status: ComponentStatus::MajorOutage,
            updated_ms: 0,
        };
        let svg = badge_svg(&c);
        assert!(svg.starts_with("<svg") && svg.contains("Web &amp; shop") && svg.contains("major outage"), "{svg}");
        assert!(svg.contains("#a11919"));
    }
}
