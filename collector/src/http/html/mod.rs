//! HTML and XML output: the one escape for text and attribute values, and [`svg`] for the
//! charts and badges. Everything a page, feed or badge shows that came from a person, an
//! agent or a plugin passes through [`esc`].

pub mod svg;

/// `text` safe inside HTML or XML text and inside single- or double-quoted attribute values.
pub fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
