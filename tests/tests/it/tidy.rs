//! The architecture's rules, read from `tidy.toml` and checked against the sources (as
//! rust-analyzer's tidy test does): every file says what it owns, no import cycle, each room
//! of the collector names only the rooms below it, pure rooms name no IO or clock, some names
//! live in one place only, and HTML is written in one room. A violation names the file, the
//! rule and the reason.
//!
//! The sources are read with a small lexer (comments and string literals are not code); paths
//! are taken from `use` trees and from `crate::`/`super::`/`self::` paths in code.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The repository root (this crate lives in `tests/`).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

#[test]
fn the_sources_keep_the_architecture_rules() {
    let root = root();
    let rules = std::fs::read_to_string(root.join("tidy.toml")).unwrap();
    let violations = check(&root, &rules);
    assert!(
        violations.is_empty(),
        "{} architecture rule(s) broken (tidy.toml; ARCHITECTURE.md says why):\n  {}",
        violations.len(),
        violations.join("\n  ")
    );
}

/// The code map in `ARCHITECTURE.md` names every module of the collector, so the map and the
/// folders cannot drift apart.
#[test]
fn the_code_map_names_every_collector_module() {
    let root = root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let missing = unmapped(&sources(&root, "collector/src"), &doc);
    assert!(missing.is_empty(), "modules the code map in ARCHITECTURE.md does not name: {missing:?}");
}

#[test]
fn the_code_map_check_finds_a_module_left_out() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("c/src");
    std::fs::create_dir_all(src.join("store")).unwrap();
    for rel in ["lib.rs", "store/mod.rs", "store/audit.rs", "store/audit_tests.rs", "store/hidden.rs"] {
        std::fs::write(src.join(rel), "//! x\n").unwrap();
    }
    std::fs::write(src.join("store/users.rs"), "//! x\n").unwrap();
    let doc = "- `store` — the database, `users`.\n- `store::audit` — the trail.\n\n`hidden` elsewhere.";
    assert_eq!(unmapped(&sources(dir.path(), "c/src"), doc), ["store::hidden"]);
}

/// Modules (not `lib`, `main` or `_tests` files) whose path the document does not name, in
/// code quotes: the full path (`http::public::page`), its last two segments (`public::page`),
/// the module as the prefix of an item (`engine::Engine`), or its own name inside the bullet
/// of one of its ancestors (`` `config` `` in the bullet `` - `app` — … ``).
fn unmapped(files: &[Source], doc: &str) -> Vec<String> {
    let mut out = Vec::new();
    for file in files.iter().filter(|f| !f.is_tests && !f.module.is_empty()) {
        let full = file.module.join("::");
        let last = file.module.last().unwrap();
        let tail = file.module[file.module.len().saturating_sub(2)..].join("::");
        let quoted = format!("`{last}`");
        let in_ancestor = (1..file.module.len()).any(|n| bullet(doc, &file.module[..n].join("::")).contains(&quoted));
        let named = doc.contains(&format!("`{full}"))
            || doc.contains(&format!("`{tail}"))
            || doc.contains(&format!("`{last}::"))
            || in_ancestor;
        if !named {
            out.push(full);
        }
    }
    out
}

/// The text of the list item that starts with `` - `name` ``, up to the next item, blank line
/// or heading (empty if there is none).
fn bullet(doc: &str, name: &str) -> String {
    let start = format!("- `{name}`");
    let mut lines = doc.lines().skip_while(|l| !l.trim_start().starts_with(&start));
    let Some(first) = lines.next() else { return String::new() };
    let mut text = first.to_string();
    for line in lines {
        let t = line.trim_start();
        if t.is_empty() || t.starts_with("- ") || t.starts_with('#') {
            break;
        }
        text.push('\n');
        text.push_str(line);
    }
    text
}

/// The checker finds each kind of violation: a crate built to break every rule once.
#[test]
fn the_checker_finds_what_breaks_the_rules() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("c/src");
    let write = |rel: &str, text: &str| {
        let path = src.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    write("lib.rs", "//! Root.\npub mod low;\npub mod high;\n");
    // `low` names `high` (a room above it), and the two import each other: a cycle.
    write("low/mod.rs", "//! Low.\nuse crate::high::Thing;\npub fn now() { let _ = std::time::SystemTime::now(); }\n");
    write("high/mod.rs", "//! High.\nuse crate::{low::{self, now}};\npub struct Thing;\n");
    // No `//!`; HTML outside the HTML room; a name outside where it may be.
    write(
        "high/page.rs",
        "// not a module doc\n/// \"<p>\" in a comment is fine\npub fn page() -> &'static str { \"<p class=x>hi</p>\" }\nuse sqlx::Row;\n",
    );
    // Comments and strings are not code: none of these count.
    // A test's expected markup builds no HTML either.
    write(
        "low/quiet.rs",
        "//! Quiet.\n// use crate::high;\n/* sqlx */ pub const S: &str = \"crate::high sqlx\";\n\n#[cfg(test)]\nmod tests { const PAGE: &str = \"<p>hi</p>\"; }\n",
    );
    let rules = r#"
documented = ["c/src"]
acyclic = ["c/src"]
[[only]]
name = "sqlx"
inside = ["c/src/store"]
scope = ["c/src"]
why = "store only"
[html]
inside = ["c/src/html"]
scope = ["c/src"]
debt = ["c/src/low/quiet.rs"]
[collector]
src = "c/src"
[[collector.room]]
name = "low"
may_import = []
forbid = ["SystemTime::now"]
[[collector.room]]
name = "high"
may_import = ["low"]
forbid = []
"#;
    let found = check(dir.path(), rules);
    let has = |needle: &str| found.iter().any(|v| v.contains(needle));
    assert!(has("c/src/high/page.rs: no //! "), "{found:#?}");
    assert!(has("import cycle: high -> low -> high") || has("import cycle: low -> high -> low"), "{found:#?}");
    assert!(has("c/src/low/mod.rs: room low may not import high"), "{found:#?}");
    assert!(has("c/src/low/mod.rs: names SystemTime::now"), "{found:#?}");
    assert!(has("c/src/high/page.rs: names sqlx (store only)"), "{found:#?}");
    assert!(has("c/src/high/page.rs: HTML markup in a string"), "{found:#?}");
    assert!(has("c/src/low/quiet.rs: listed as HTML debt but builds no HTML"), "{found:#?}");
    assert!(!found.iter().any(|v| v.contains("quiet.rs") && !v.contains("debt")), "{found:#?}");
    assert_eq!(found.len(), 7, "{found:#?}");
}

// ---- the checker ----

fn check(root: &Path, rules: &str) -> Vec<String> {
    let rules: toml::Table = rules.parse().expect("tidy.toml parses");
    let list = |v: Option<&toml::Value>| -> Vec<String> {
        v.and_then(toml::Value::as_array)
            .map(|a| a.iter().filter_map(|s| s.as_str().map(str::to_string)).collect())
            .unwrap_or_default()
    };
    let mut out = Vec::new();
    for dir in list(rules.get("documented")) {
        for file in sources(root, &dir) {
            if !file.text.trim_start().starts_with("//!") {
                out.push(format!("{}: no //! comment saying what the file owns", file.rel));
            }
        }
    }
    for dir in list(rules.get("acyclic")) {
        out.extend(cycles(&sources(root, &dir), &dir));
    }
    for only in rules.get("only").and_then(toml::Value::as_array).into_iter().flatten() {
        let name = only["name"].as_str().unwrap_or_default();
        let why = only.get("why").and_then(toml::Value::as_str).unwrap_or("");
        let inside = list(only.get("inside"));
        for dir in list(only.get("scope")) {
            for file in sources(root, &dir) {
                if !under(&file.rel, &inside) && has_name(&file.code, name) {
                    out.push(format!("{}: names {name} ({why})", file.rel));
                }
            }
        }
    }
    if let Some(html) = rules.get("html") {
        let inside = list(html.get("inside"));
        let debt = list(html.get("debt"));
        for dir in list(html.get("scope")) {
            for file in sources(root, &dir) {
                let builds = file.shipped_strings().iter().any(|s| has_markup(s));
                if builds && !under(&file.rel, &inside) && !debt.contains(&file.rel) {
                    out.push(format!("{}: HTML markup in a string outside {}", file.rel, inside.join(", ")));
                }
                if !builds && debt.contains(&file.rel) {
                    out.push(format!("{}: listed as HTML debt but builds no HTML: take it off the list", file.rel));
                }
            }
        }
    }
    if let Some(collector) = rules.get("collector") {
        out.extend(rooms(root, collector));
    }
    out
}

fn under(rel: &str, dirs: &[String]) -> bool {
    dirs.iter().any(|d| rel == d || rel.starts_with(&format!("{d}/")) || rel == format!("{d}.rs"))
}

/// One source file, lexed.
struct Source {
    /// Path from the root, with `/`.
    rel: String,
    /// The module it belongs to, from its crate's `src` (`x_tests.rs` belongs to `x`).
    module: Vec<String>,
    /// A `x_tests.rs` file: its `super` is `x`.
    is_tests: bool,
    text: String,
    /// Code without comments; string literals emptied.
    code: String,
    /// The string literals' contents.
    strings: Vec<String>,
    /// How many of `strings` come before the file's `#[cfg(test)]` module: the rest are tests'
    /// expectations, which read markup rather than build it.
    shipped: usize,
}

impl Source {
    /// The string literals outside the tests.
    fn shipped_strings(&self) -> &[String] {
        if self.is_tests { &[] } else { &self.strings[..self.shipped] }
    }
}

fn sources(root: &Path, dir: &str) -> Vec<Source> {
    let base = root.join(dir);
    let mut files = Vec::new();
    walk(&base, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let inner = path.strip_prefix(&base).unwrap().with_extension("");
            let mut module: Vec<String> = inner.iter().map(|s| s.to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            let mut is_tests = false;
            if let Some(last) = module.last_mut()
                && let Some(of) = last.strip_suffix("_tests")
            {
                *last = of.to_string();
                is_tests = true;
            }
            let (code, strings) = lex(&text);
            let shipped = match text.find("\n#[cfg(test)]") {
                Some(at) => lex(&text[..at]).1.len(),
                None => strings.len(),
            };
            let rel = path.strip_prefix(root).unwrap().to_string_lossy().replace('\\', "/");
            Source { rel, module, is_tests, text, code, strings, shipped }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Split Rust source into code (comments removed, string and char literals emptied) and the
/// string literals' contents.
fn lex(text: &str) -> (String, Vec<String>) {
    let c: Vec<char> = text.chars().collect();
    let (mut code, mut strings) = (String::with_capacity(text.len()), Vec::new());
    let mut i = 0;
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    while i < c.len() {
        let prev_ident = i > 0 && ident(c[i - 1]);
        match c[i] {
            '/' if c.get(i + 1) == Some(&'/') => {
                while i < c.len() && c[i] != '\n' {
                    i += 1;
                }
            }
            '/' if c.get(i + 1) == Some(&'*') => {
                let mut depth = 0;
                while i < c.len() {
                    if c[i] == '/' && c.get(i + 1) == Some(&'*') {
                        depth += 1;
                        i += 2;
                    } else if c[i] == '*' && c.get(i + 1) == Some(&'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                code.push(' ');
            }
            // Raw strings: r"…", r#"…"#, br"…" (a prefix letter right before, not part of a word).
            'r' if !prev_ident || (i > 0 && c[i - 1] == 'b' && (i < 2 || !ident(c[i - 2]))) => {
                let mut j = i + 1;
                while c.get(j) == Some(&'#') {
                    j += 1;
                }
                if c.get(j) == Some(&'"') {
                    let hashes = j - i - 1;
                    let start = j + 1;
                    let mut k = start;
                    loop {
                        if k >= c.len() {
                            break;
                        }
                        if c[k] == '"' && (0..hashes).all(|h| c.get(k + 1 + h) == Some(&'#')) {
                            break;
                        }
                        k += 1;
                    }
                    strings.push(c[start..k.min(c.len())].iter().collect());
                    code.push_str("\"\"");
                    i = k + 1 + hashes;
                } else {
                    code.push('r');
                    i += 1;
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                while i < c.len() && c[i] != '"' {
                    if c[i] == '\\' {
                        s.push(c[i]);
                        i += 1;
                    }
                    if let Some(ch) = c.get(i) {
                        s.push(*ch);
                    }
                    i += 1;
                }
                i += 1;
                strings.push(s);
                code.push_str("\"\"");
            }
            '\'' => {
                // A char literal ('x', '\n', '\u{..}') or a lifetime ('a).
                if c.get(i + 1) == Some(&'\\') {
                    let mut j = i + 3;
                    while j < c.len() && c[j] != '\'' {
                        j += 1;
                    }
                    code.push_str("' '");
                    i = j + 1;
                } else if c.get(i + 2) == Some(&'\'') {
                    code.push_str("' '");
                    i += 3;
                } else {
                    code.push('\'');
                    i += 1;
                }
            }
            ch => {
                code.push(ch);
                i += 1;
            }
        }
    }
    (code, strings)
}

/// Whether `code` names `name` (`tokio`, `std::fs`, `Instant::now`) as a whole path part.
fn has_name(code: &str, name: &str) -> bool {
    let ident = |ch: char| ch.is_alphanumeric() || ch == '_';
    code.match_indices(name).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        let after = code[at + name.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// An HTML element's opening or closing tag in a string.
fn has_markup(s: &str) -> bool {
    const ELEMENTS: &[&str] = &[
        "!doctype", "a", "abbr", "article", "aside", "b", "body", "br", "button", "caption", "code", "dd", "details",
        "div", "dl", "dt", "em", "fieldset", "footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "head", "header",
        "hr", "html", "i", "img", "input", "label", "legend", "li", "link", "main", "meta", "nav", "ol", "option", "p",
        "pre", "script", "section", "select", "small", "span", "strong", "style", "summary", "svg", "table", "tbody",
        "td", "textarea", "th", "thead", "time", "title", "tr", "ul",
    ];
    let lower = s.to_ascii_lowercase();
    lower.match_indices('<').any(|(at, _)| {
        let rest = lower[at + 1..].strip_prefix('/').unwrap_or(&lower[at + 1..]);
        ELEMENTS.iter().any(|e| {
            rest.strip_prefix(e).is_some_and(|after| after.is_empty() || after.starts_with([' ', '>', '/', '\n']))
        })
    })
}

/// Every path a file names, absolute from its crate root (`crate::a::b` → `[a, b]`), with the
/// line it is on.
fn paths(file: &Source) -> Vec<(Vec<String>, usize)> {
    let mut out = Vec::new();
    let code = &file.code;
    let line_of = |at: usize| code[..at].matches('\n').count() + 1;
    // `use` trees, expanded.
    let mut from = 0;
    while let Some(found) = code[from..].find("use ") {
        let at = from + found;
        from = at + 4;
        let word_start = at == 0 || !code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if !word_start {
            continue;
        }
        let Some(end) = code[from..].find(';') else { break };
        let tree = code[from..from + end].split_whitespace().collect::<Vec<_>>().join(" ");
        for path in expand(&tree) {
            if let Some(abs) = absolute(file, &path) {
                out.push((abs, line_of(at)));
            }
        }
    }
    // Paths in code: crate::…, super::…, self::….
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            let path: Vec<String> = code[at..]
                .split(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .next()
                .unwrap_or("")
                .split("::")
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
            if let Some(abs) = absolute(file, &path) {
                out.push((abs, line_of(at)));
            }
        }
    }
    out
}

/// `a::{b, c::{d, e as f}}` → `a::b`, `a::c::d`, `a::c::e`.
fn expand(tree: &str) -> Vec<Vec<String>> {
    fn segments(path: &str) -> impl Iterator<Item = String> + '_ {
        path.split("::").map(str::trim).filter(|s| !s.is_empty() && *s != "*").map(str::to_string)
    }
    fn go(prefix: &[String], tree: &str, out: &mut Vec<Vec<String>>) {
        let tree = tree.trim().trim_matches(',').trim();
        if let Some(open) = tree.find('{') {
            let mut head = prefix.to_vec();
            head.extend(segments(&tree[..open]));
            let inner = &tree[open + 1..tree.rfind('}').unwrap_or(tree.len())];
            let (mut depth, mut start) = (0, 0);
            for (i, ch) in inner.char_indices() {
                match ch {
                    '{' => depth += 1,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        go(&head, &inner[start..i], out);
                        start = i + 1;
                    }
                    _ => {}
                }
            }
            go(&head, &inner[start..], out);
        } else if !tree.is_empty() {
            let tree = tree.split(" as ").next().unwrap_or(tree);
            let mut path = prefix.to_vec();
            path.extend(segments(tree));
            if path.last().is_some_and(|s| s == "self") {
                path.pop();
            }
            out.push(path);
        }
    }
    let tree = tree.trim();
    let mut out = Vec::new();
    go(&[], tree, &mut out);
    out
}

/// A path made absolute within the crate, or None for another crate's path.
fn absolute(file: &Source, path: &[String]) -> Option<Vec<String>> {
    let mut here = file.module.clone();
    if file.is_tests {
        here.push("tests".into());
    }
    let mut rest = path;
    match rest.first().map(String::as_str) {
        Some("crate") => {
            here.clear();
            rest = &rest[1..];
        }
        Some("super" | "self") => {
            while let Some(first) = rest.first() {
                match first.as_str() {
                    "super" => {
                        here.pop();
                    }
                    "self" => {}
                    _ => break,
                }
                rest = &rest[1..];
            }
        }
        _ => return None,
    }
    here.extend(rest.iter().cloned());
    Some(here)
}

/// The module a path lands in: its longest prefix that is a module of the crate.
fn target(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (0..=path.len()).rev().map(|n| path[..n].to_vec()).find(|p| modules.contains(p)).unwrap_or_default()
}

/// Import cycles between modules (an edge to one's own ancestor does not count).
fn cycles(files: &[Source], dir: &str) -> Vec<String> {
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>> = BTreeMap::new();
    for file in files {
        for (path, _) in paths(file) {
            let to = target(&modules, &path);
            if !file.module.starts_with(&to) {
                edges.entry(file.module.clone()).or_default().insert(to);
            }
        }
    }
    let name = |m: &Vec<String>| if m.is_empty() { "(root)".to_string() } else { m.join("::") };
    let mut out = Vec::new();
    for scc in strongly_connected(&modules, &edges) {
        if scc.len() > 1 {
            // The shortest cycle through the component's first module, for the message.
            let members: BTreeSet<&Vec<String>> = scc.iter().collect();
            let start = &scc[0];
            let mut parent: BTreeMap<&Vec<String>, &Vec<String>> = BTreeMap::new();
            let mut queue = std::collections::VecDeque::from([start]);
            let mut last = None;
            while let Some(at) = queue.pop_front() {
                for next in edges.get(at).into_iter().flatten().filter(|n| members.contains(n)) {
                    if next == start {
                        last = Some(at);
                        queue.clear();
                        break;
                    }
                    if !parent.contains_key(next) {
                        parent.insert(next, at);
                        queue.push_back(next);
                    }
                }
            }
            let mut walk = vec![start.clone()];
            let mut at = last;
            while let Some(m) = at.filter(|m| *m != start) {
                walk.push(m.clone());
                at = parent.get(m).copied();
            }
            walk[1..].reverse();
            walk.push(start.clone());
            out.push(format!("{dir}: import cycle: {}", walk.iter().map(name).collect::<Vec<_>>().join(" -> ")));
        }
    }
    out
}

/// Tarjan's strongly connected components.
fn strongly_connected(
    nodes: &BTreeSet<Vec<String>>,
    edges: &BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
) -> Vec<Vec<Vec<String>>> {
    struct State<'a> {
        edges: &'a BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
        index: BTreeMap<Vec<String>, usize>,
        low: BTreeMap<Vec<String>, usize>,
        stack: Vec<Vec<String>>,
        on: BTreeSet<Vec<String>>,
        out: Vec<Vec<Vec<String>>>,
    }
    fn visit(s: &mut State<'_>, v: &Vec<String>) {
        let n = s.index.len();
        s.index.insert(v.clone(), n);
        s.low.insert(v.clone(), n);
        s.stack.push(v.clone());
        s.on.insert(v.clone());
        for w in s.edges.get(v).cloned().unwrap_or_default() {
            if !s.index.contains_key(&w) {
                visit(s, &w);
                let low = s.low[v].min(s.low[&w]);
                s.low.insert(v.clone(), low);
            } else if s.on.contains(&w) {
                let low = s.low[v].min(s.index[&w]);
                s.low.insert(v.clone(), low);
            }
        }
        if s.low[v] == s.index[v] {
            let mut scc = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on.remove(&w);
                let done = w == *v;
                scc.push(w);
                if done {
                    break;
                }
            }
            scc.reverse();
            s.out.push(scc);
        }
    }
    let mut s = State {
        edges,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: Vec::new(),
        on: BTreeSet::new(),
        out: Vec::new(),
    };
    for v in nodes {
        if !s.index.contains_key(v) {
            visit(&mut s, v);
        }
    }
    s.out
}

/// The collector's rooms: who may import whom, and what a room may not name.
fn rooms(root: &Path, collector: &toml::Value) -> Vec<String> {
    let src = collector["src"].as_str().unwrap_or_default();
    let mut allowed: BTreeMap<String, (BTreeSet<String>, Vec<String>)> = BTreeMap::new();
    for room in collector.get("room").and_then(toml::Value::as_array).into_iter().flatten() {
        let names = |key: &str| -> Vec<String> {
            room.get(key)
                .and_then(toml::Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_string)).collect())
                .unwrap_or_default()
        };
        let name = room["name"].as_str().unwrap_or_default().to_string();
        allowed.insert(name, (names("may_import").into_iter().collect(), names("forbid")));
    }
    let files = sources(root, src);
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| f.module.clone()).collect();
    let mut out = Vec::new();
    for file in &files {
        let Some(room) = file.module.first() else { continue };
        let Some((may, forbid)) = allowed.get(room) else {
            out.push(format!("{}: in no room of tidy.toml ({room})", file.rel));
            continue;
        };
        let mut named = BTreeSet::new();
        for (path, line) in paths(file) {
            let to = target(&modules, &path);
            if let Some(other) = to.first()
                && other != room
                && !may.contains(other)
                && named.insert(other.clone())
            {
                out.push(format!("{}: room {room} may not import {other} (line {line})", file.rel));
            }
        }
        for name in forbid {
            if has_name(&file.code, name) {
                out.push(format!("{}: names {name}, which room {room} may not", file.rel));
            }
        }
    }
    out
}
