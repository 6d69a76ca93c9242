//! Every HTML, XML and SVG document the collector writes goes through maud's `html!`, which
//! escapes every spliced value by default (text and double-quoted attribute values alike).
//! Raw markup, maud's `PreEscaped`, exists only in this module and its children: the style
//! sheets, the doctype and the XML prolog, all constants. Anything that came from a person,
//! an agent or a plugin is spliced as text and cannot become an element or an attribute.
//!
//! [`layout`] holds the two page frames (operator and public), [`svg`] every chart and badge,
//! [`feed`] the Atom and RSS documents. Pages themselves live with their routes and build
//! their bodies with `html!`.

pub mod feed;
pub mod layout;
pub mod svg;

/// A rendered fragment or document (maud's type; its text is already escaped).
pub type Markup = maud::Markup;

/// Text someone else wrote (an operator, a customer, an agent, a plugin), isolated from what
/// surrounds it: a bidirectional override inside it (U+202E) reorders only itself, never the
/// time or the words the page puts after it.
pub fn text(s: &str) -> Markup {
    maud::html! { bdi { (s) } }
}

/// A table's header row: one column header per name, scoped to its column so a screen reader
/// names the column of every cell.
pub fn columns(names: &[&str]) -> Markup {
    maud::html! { thead { tr { @for n in names { th scope="col" { (n) } } } } }
}

/// A table of `rows` (its `tbody`) under a header row of `names`, in a region that scrolls
/// sideways by itself when the table is wider than the screen (a phone), so the page never
/// does; the region is named by `label` and reachable by keyboard, to scroll it without a mouse.
pub fn table(label: &str, names: &[&str], rows: Markup) -> Markup {
    maud::html! {
        div.table role="region" aria-label=(label) tabindex="0" {
            table { (columns(names)) (rows) }
        }
    }
}

/// The document as the bytes an HTTP answer carries.
pub fn document(markup: Markup) -> String {
    markup.into_string()
}
