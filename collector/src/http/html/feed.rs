//! Atom and RSS 2.0 documents. Text is escaped by the template; characters XML 1.0 does not
//! allow at all (control characters other than tab and line breaks, unpaired surrogates cannot
//! occur in a `str`, U+FFFE and U+FFFF) are dropped first, so a title a person typed cannot make
//! a reader reject the whole feed.

use maud::{Markup, PreEscaped, html};

const PROLOG: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n";

/// A feed: its own identity, a link for people, and its entries, newest first. Links are
/// absolute: readers fetch a feed without the page it came from.
#[derive(Debug, Clone, Default)]
pub struct Feed {
    pub title: String,
    /// A stable URI naming the feed (Atom `id`).
    pub id: String,
    /// The page the feed is about.
    pub link: String,
    /// Where the Atom and the RSS document themselves are (`rel="self"`).
    pub atom_self: String,
    pub rss_self: String,
    /// Who publishes it (Atom `author`).
    pub author: String,
    /// Its language (`en`, `sv`).
    pub lang: String,
    pub description: String,
    /// RFC 3339 (Atom).
    pub updated: String,
    /// RFC 2822 (RSS `lastBuildDate`).
    pub built: String,
    pub entries: Vec<Entry>,
}

/// One entry (Atom) or item (RSS).
#[derive(Debug, Clone, Default)]
pub struct Entry {
    /// A stable URI naming the entry.
    pub id: String,
    pub title: String,
    pub link: String,
    /// RFC 3339 (Atom).
    pub updated: String,
    /// RFC 2822 (RSS).
    pub published: String,
    pub body: String,
}

/// `text` without the characters XML 1.0 forbids.
pub fn xml_chars(text: &str) -> String {
    text.chars()
        .filter(|c| matches!(c, '\t' | '\n' | '\r') || (u32::from(*c) >= 0x20 && !matches!(c, '\u{FFFE}' | '\u{FFFF}')))
        .collect()
}

fn document(body: Markup) -> String {
    let mut out = String::from(PROLOG);
    out.push_str(&body.into_string());
    out.push('\n');
    out
}

/// The feed as Atom (RFC 4287).
pub fn atom(feed: &Feed) -> String {
    document(html! {
        feed xmlns="http://www.w3.org/2005/Atom" xml:lang=(feed.lang) {
            title { (xml_chars(&feed.title)) }
            id { (xml_chars(&feed.id)) }
            link rel="alternate" type="text/html" href=(xml_chars(&feed.link)) {}
            link rel="self" type="application/atom+xml" href=(xml_chars(&feed.atom_self)) {}
            updated { (feed.updated) }
            author { name { (xml_chars(&feed.author)) } }
            @for e in &feed.entries {
                (PreEscaped("\n"))
                entry {
                    id { (xml_chars(&e.id)) }
                    title { (xml_chars(&e.title)) }
                    updated { (e.updated) }
                    link rel="alternate" type="text/html" href=(xml_chars(&e.link)) {}
                    content type="text" { (xml_chars(&e.body)) }
                }
            }
        }
    })
}

/// The feed as RSS 2.0.
pub fn rss(feed: &Feed) -> String {
    document(html! {
        rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom" {
            channel {
                title { (xml_chars(&feed.title)) }
                link { (xml_chars(&feed.link)) }
                description { (xml_chars(&feed.description)) }
                language { (feed.lang) }
                lastBuildDate { (feed.built) }
                atom:link href=(xml_chars(&feed.rss_self)) rel="self" type="application/rss+xml" {}
                @for e in &feed.entries {
                    (PreEscaped("\n"))
                    item {
                        title { (xml_chars(&e.title)) }
                        link { (xml_chars(&e.link)) }
                        guid isPermaLink="false" { (xml_chars(&e.id)) }
                        pubDate { (e.published) }
                        description { (xml_chars(&e.body)) }
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn hostile_text_stays_text_and_the_feed_stays_xml() {
        let hostile = "<script>alert(1)</script> ]]> &#x3C; \u{1}\u{8}\u{202E} \"'";
        let feed = Feed {
            title: "Status".into(),
            entries: vec![Entry { title: hostile.into(), body: hostile.into(), ..Entry::default() }],
            ..Feed::default()
        };
        for doc in [atom(&feed), rss(&feed)] {
            assert!(doc.starts_with("<?xml"), "{doc}");
            assert!(!doc.contains("<script") && !doc.contains("]]>") && !doc.contains("&#x3C;"), "{doc}");
            assert!(doc.contains("&lt;script&gt;") && doc.contains("&amp;#x3C;"), "{doc}");
            assert!(!doc.contains('\u{1}') && !doc.contains('\u{8}'), "control characters dropped");
            assert!(doc.contains('\u{202E}'), "other text is kept as it is");
        }
    }
}
