//! Words sent to customers and subscribers, in Swedish and English (pure). Customers hear
//! about an incident directly while few are affected; subscribers follow the status page.

use crate::incident::Ms;
use crate::rules::policy::Public;

/// The languages of the public page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Sv,
}

impl Lang {
    /// `?lang=` wins; else the best of `Accept-Language` (q-values honoured); else English.
    pub fn pick(query: Option<&str>, accept_language: Option<&str>) -> Lang {
        match query {
            Some("sv") => return Lang::Sv,
            Some("en") => return Lang::En,
            _ => {}
        }
        let mut best: Option<(f32, Lang)> = None;
        for part in accept_language.unwrap_or("").split(',') {
            let mut pieces = part.trim().split(';');
            let tag = pieces.next().unwrap_or("").trim().to_ascii_lowercase();
            let q = pieces.find_map(|p| p.trim().strip_prefix("q=").and_then(|v| v.parse::<f32>().ok())).unwrap_or(1.0);
            let lang = if tag == "sv" || tag.starts_with("sv-") {
                Lang::Sv
            } else if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else {
                continue;
            };
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, lang));
            }
        }
        best.map_or(Lang::En, |(_, l)| l)
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Sv => "sv",
        }
    }

    /// Whether the language is Swedish (the plain-text messages are written per language).
    pub fn is_sv(self) -> bool {
        self == Lang::Sv
    }

    /// A moment as a reader of this language writes it, in UTC, short enough not to wrap on a
    /// phone: "27 Nov, 17:00 UTC" ("27 nov 17:00 UTC"), with the year when it is not `now`'s.
    pub fn when(self, ms: Ms, now: Ms) -> String {
        let Some(t) = moment(ms) else { return String::new() };
        let day = self.day(ms, now);
        let clock = format!("{:02}:{:02} UTC", t.hour(), t.minute());
        if self == Lang::Sv { format!("{day} {clock}") } else { format!("{day}, {clock}") }
    }

    /// A day: "1 Dec" ("1 dec"), with the year when it is not `now`'s.
    pub fn day(self, ms: Ms, now: Ms) -> String {
        let Some(t) = moment(ms) else { return String::new() };
        let month = MONTHS[usize::from(u8::from(t.month())) - 1];
        let month = if self == Lang::Sv { month.1 } else { month.0 };
        if moment(now).is_some_and(|n| n.year() == t.year()) {
            format!("{} {month}", t.day())
        } else {
            format!("{} {month} {}", t.day(), t.year())
        }
    }

    /// The public page's word for `key` in this language ("" for an unknown key).
    pub fn word(self, key: &str) -> &'static str {
        PAGE_WORDS.iter().find(|(k, _, _)| *k == key).map_or("", |(_, en, sv)| if self == Lang::Sv { sv } else { en })
    }
}

/// Month abbreviations: (English, Swedish).
const MONTHS: [(&str, &str); 12] = [
    ("Jan", "jan"),
    ("Feb", "feb"),
    ("Mar", "mar"),
    ("Apr", "apr"),
    ("May", "maj"),
    ("Jun", "jun"),
    ("Jul", "jul"),
    ("Aug", "aug"),
    ("Sep", "sep"),
    ("Oct", "okt"),
    ("Nov", "nov"),
    ("Dec", "dec"),
];

/// A time in ms as a date and time in UTC.
fn moment(ms: Ms) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000)).ok()
}

/// The public page's words: (key, English, Swedish). Component statuses and public update
/// states are keys too, by their Statuspage names.
const PAGE_WORDS: &[(&str, &str, &str)] = &[
    ("title", "System status", "Driftstatus"),
    ("components", "Components", "Komponenter"),
    ("other", "Other", "Övriga"),
    ("updated", "Updated", "Uppdaterad"),
    ("language", "Language", "Språk"),
    ("none", "All systems operational", "Alla system fungerar normalt"),
    ("minor", "Minor service outage", "Mindre störning"),
    ("major", "Partial system outage", "Delvis avbrott"),
    ("critical", "Major system outage", "Större avbrott"),
    ("maintenance", "Service under maintenance", "Underhåll pågår"),
    ("operational", "Operational", "I drift"),
    ("degraded_performance", "Degraded performance", "Försämrad prestanda"),
    ("partial_outage", "Partial outage", "Delvis avbrott"),
    ("major_outage", "Major outage", "Större avbrott"),
    ("under_maintenance", "Under maintenance", "Underhåll"),
    ("uptime", "uptime over the last 90 days", "tillgänglighet de senaste 90 dagarna"),
    ("uptime_since", "uptime since", "tillgänglighet sedan"),
    ("no_data", "no data", "inga data"),
    ("no_history", "no data over the last 90 days yet", "inga data för de senaste 90 dagarna än"),
    ("days_ago", "90 days ago", "För 90 dagar sedan"),
    ("today", "Today", "Idag"),
    ("nothing", "No components are configured.", "Inga komponenter är konfigurerade."),
    ("current", "Current incidents", "Pågående händelser"),
    ("past", "Past incidents", "Tidigare händelser"),
    ("investigating", "Investigating", "Utreds"),
    ("identified", "Identified", "Orsaken är identifierad"),
    ("monitoring", "Monitoring", "Bevakas"),
    ("resolved", "Resolved", "Löst"),
    ("maintenance_heading", "Scheduled maintenance", "Planerat underhåll"),
    ("scheduled", "Scheduled", "Planerat"),
    ("in_progress", "In progress", "Pågår"),
    ("subscribe", "Subscribe", "Prenumerera"),
    ("subscribe_long", "Subscribe to updates", "Prenumerera på uppdateringar"),
    ("nothing_yet", "No services are on this page yet.", "Inga tjänster visas här än."),
];

/// Text that must stay on one line (an e-mail header, a title inside a plain-text body, a
/// Markdown field): line breaks, tabs and other control characters become spaces, and the
/// Unicode bidirectional controls, which reorder what a reader sees, are dropped.
pub fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !is_bidi_control(*c))
        .map(|c| if c.is_control() || c == '\u{2028}' || c == '\u{2029}' { ' ' } else { c })
        .collect()
}

/// U+061C, U+200E/F, U+202A–U+202E and U+2066–U+2069: marks, embeddings, overrides, isolates.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// A message's language.
pub fn lang(code: &str) -> &'static str {
    if code == "sv" { "sv" } else { "en" }
}

fn status_words(status: &str, sv: bool) -> &str {
    match (status, sv) {
        ("investigating", true) => "Vi undersöker",
        ("identified", true) => "Orsaken är identifierad",
        ("monitoring", true) => "Åtgärdat, vi övervakar",
        ("resolved", true) => "Löst",
        ("investigating", false) => "Investigating",
        ("identified", false) => "Identified",
        ("monitoring", false) => "Monitoring a fix",
        ("resolved", false) => "Resolved",
        (other, _) => other,
    }
}

/// An update to an affected customer's contacts: (subject, body).
pub fn customer_update(code: &str, title: &str, status: &str, text: &str, public: &Public) -> (String, String) {
    let title = &one_line(title);
    let sv = lang(code) == "sv";
    let org = &public.organisation;
    if sv {
        (
            format!("[{org}] {}: {title}", status_words(status, true)),
            format!(
                "Hej,\n\nEn störning påverkar en tjänst ni använder: {title}.\nLäge: {}\n\n{text}\n\nVi hör av oss igen när läget ändras och när det är löst.\n\nMed vänlig hälsning\n{org}\n",
                status_words(status, true)
            ),
        )
    } else {
        (
            format!("[{org}] {}: {title}", status_words(status, false)),
            format!(
                "Hello,\n\nAn incident affects a service you use: {title}.\nStatus: {}\n\n{text}\n\nWe will write again when this changes and when it is resolved.\n\nKind regards\n{org}\n",
                status_words(status, false)
            ),
        )
    }
}

/// The resolution, to the contacts who were told directly: (subject, body).
pub fn customer_resolved(code: &str, title: &str, public: &Public) -> (String, String) {
    let title = &one_line(title);
    let org = &public.organisation;
    if lang(code) == "sv" {
        (
            format!("[{org}] Löst: {title}"),
            format!(
                "Hej,\n\nStörningen är löst: {title}.\nTjänsten fungerar som vanligt igen.\n\nMed vänlig hälsning\n{org}\n"
            ),
        )
    } else {
        (
            format!("[{org}] Resolved: {title}"),
            format!(
                "Hello,\n\nThe incident is resolved: {title}.\nThe service works as usual again.\n\nKind regards\n{org}\n"
            ),
        )
    }
}

/// A public update to a subscriber, with the unsubscribe link: (subject, body).
pub fn subscriber_update(
    code: &str,
    title: &str,
    status: &str,
    text: &str,
    token: &str,
    public: &Public,
) -> (String, String) {
    let title = &one_line(title);
    let sv = lang(code) == "sv";
    let unsubscribe = format!("{}/unsubscribe?token={token}", public.url);
    let (stop, page) = if sv { ("Avsluta prenumerationen", "Driftstatus") } else { ("Unsubscribe", "Status page") };
    (
        format!("[{}] {}: {title}", public.organisation, status_words(status, sv)),
        format!("{title}\n{}\n\n{text}\n\n{page}: {}/\n{stop}: {unsubscribe}\n", status_words(status, sv), public.url),
    )
}

/// The double opt-in: nothing is sent to an address until its owner follows this link.
pub fn subscriber_confirm(code: &str, token: &str, public: &Public) -> (String, String) {
    let confirm = format!("{}/subscribe/confirm?token={token}", public.url);
    if lang(code) == "sv" {
        (
            format!("[{}] Bekräfta prenumerationen på driftstatus", public.organisation),
            format!(
                "Hej,\n\nNågon (förhoppningsvis du) vill få meddelanden om driftstörningar till den här adressen.\nBekräfta: {confirm}\n\nOm det inte var du behöver du inte göra något; du får inga fler meddelanden.\n"
            ),
        )
    } else {
        (
            format!("[{}] Confirm your status page subscription", public.organisation),
            format!(
                "Hello,\n\nSomeone (hopefully you) asked for incident updates at this address.\nConfirm: {confirm}\n\nIf it was not you, do nothing; you will get no further messages.\n"
            ),
        )
    }
}

/// The configured organisation's letters, for the store to write in its transactions.
impl crate::model::Letters for Public {
    fn customer_update(&self, lang: &str, title: &str, status: &str, text: &str) -> (String, String) {
        customer_update(lang, title, status, text, self)
    }

    fn customer_resolved(&self, lang: &str, title: &str) -> (String, String) {
        customer_resolved(lang, title, self)
    }

    fn subscriber_update(&self, lang: &str, title: &str, status: &str, text: &str, token: &str) -> (String, String) {
        subscriber_update(lang, title, status, text, token, self)
    }

    fn subscriber_confirm(&self, lang: &str, token: &str) -> (String, String) {
        subscriber_confirm(lang, token, self)
    }
}

/// A plausible e-mail address (the SMTP server has the last word): one `@`, a dot in the
/// domain, no spaces or control characters, at most 254 bytes.
pub fn check_email(address: &str) -> Result<(), String> {
    let ok = address.len() <= 254
        && !address.chars().any(|c| c.is_whitespace() || c.is_control() || c == ',' || c == '<' || c == '>')
        && address.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if ok { Ok(()) } else { Err(format!("`{address}` is not an e-mail address")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_written_as_each_reader_writes_them() {
        let at = 1_795_798_800_000; // 2026-11-27T17:00:00Z
        let same_year = 1_796_000_000_000;
        assert_eq!(Lang::En.when(at, same_year), "27 Nov, 17:00 UTC");
        assert_eq!(Lang::Sv.when(at, same_year), "27 nov 17:00 UTC");
        let next_year = at + 400 * 86_400_000;
        assert_eq!(Lang::En.when(at, next_year), "27 Nov 2026, 17:00 UTC");
        assert_eq!(Lang::Sv.day(at, next_year), "27 nov 2026");
        assert_eq!(Lang::En.day(1_796_083_200_000, same_year), "1 Dec", "2026-12-01");
        assert_eq!(Lang::Sv.when(1_767_225_599_000, 1_767_225_599_000), "31 dec 23:59 UTC");
    }

    #[test]
    fn the_language_comes_from_the_query_then_accept_language() {
        assert_eq!(Lang::pick(None, None), Lang::En);
        assert_eq!(Lang::pick(None, Some("sv-SE,sv;q=0.9,en;q=0.8")), Lang::Sv);
        assert_eq!(Lang::pick(None, Some("en;q=0.5, sv;q=0.7")), Lang::Sv);
        assert_eq!(Lang::pick(None, Some("de, en-GB;q=0.3")), Lang::En);
        assert_eq!(Lang::pick(None, Some("sv;q=0")), Lang::En);
        assert_eq!(Lang::pick(Some("en"), Some("sv")), Lang::En);
        assert_eq!(Lang::pick(Some("sv"), None), Lang::Sv);
    }

    #[test]
    fn messages_speak_the_customers_language_and_carry_the_links() {
        let public =
            Public { url: "https://status.example.se".into(), organisation: "Exempel AB".into(), ..Public::default() };
        let (subject, body) = customer_update("sv", "E-post försenad", "identified", "Ett relä avvisar post.", &public);
        assert_eq!(subject, "[Exempel AB] Orsaken är identifierad: E-post försenad");
        assert!(body.starts_with("Hej,") && body.contains("Ett relä avvisar post.") && body.ends_with("Exempel AB\n"));
        let (subject, _) = customer_update("en", "Mail delayed", "monitoring", "x", &public);
        assert_eq!(subject, "[Exempel AB] Monitoring a fix: Mail delayed");
        assert!(customer_resolved("en", "Mail delayed", &public).0.contains("Resolved: Mail delayed"));
        let (_, body) = subscriber_update("en", "Mail delayed", "investigating", "Looking", "tok123", &public);
        assert!(body.contains("Unsubscribe: https://status.example.se/unsubscribe?token=tok123"), "{body}");
        let (_, body) = subscriber_confirm("sv", "tok9", &public);
        assert!(body.contains("https://status.example.se/subscribe/confirm?token=tok9"), "{body}");
    }

    #[test]
    fn addresses_are_checked() {
        assert!(check_email("ops@example.se").is_ok());
        for bad in [
            "",
            "ops",
            "ops@",
            "@example.se",
            "ops@localhost",
            "a b@example.se",
            "a@b@example.se",
            "a@example.se,b@x.se",
        ] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}
