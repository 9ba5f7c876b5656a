//! The top-level modules of `src/` depend on each other in one direction: a lower module
//! never names a higher one. This reads the sources, builds the graph of `crate::X`
//! references between top-level modules and fails naming every cycle it finds, so a type
//! put in the wrong room is caught by `cargo test` rather than by the next refactor.
//!
//! The reading is deliberately rough: comments and string literals are blanked out, doc
//! comments are kept (an intra-doc link `[crate::x::Y]` is a reference too), and
//! `super::super::` paths are not followed (none leave their top-level module).

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::path::Path;

/// Module → the other top-level modules it names.
type Graph = BTreeMap<String, BTreeSet<String>>;

/// `src`'s text with ordinary comments and the contents of string and character
/// literals replaced by spaces (line breaks kept), so `"crate::x"` or `// crate::x` adds
/// no edge. Doc comments (`///`, `//!`) stay: their links are references.
fn code_only(text: &str) -> String {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let blank = |c: char| if c == '\n' { '\n' } else { ' ' };
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if c == '/' && next == Some('/') {
            let doc =
                matches!(chars.get(i + 2), Some('/') | Some('!')) && chars.get(i + 3) != Some(&'/');
            while i < chars.len() && chars[i] != '\n' {
                out.push(if doc { chars[i] } else { ' ' });
                i += 1;
            }
        } else if c == '/' && next == Some('*') {
            let mut depth = 0;
            while i < chars.len() {
                if chars[i] == '/' && chars.get(i + 1) == Some(&'*') {
                    depth += 1;
                    out.push_str("  ");
                    i += 2;
                } else if chars[i] == '*' && chars.get(i + 1) == Some(&'/') {
                    depth -= 1;
                    out.push_str("  ");
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    out.push(blank(chars[i]));
                    i += 1;
                }
            }
        } else if c == 'r'
            && (i == 0
                || !ident(chars[i - 1])
                || (chars[i - 1] == 'b' && (i < 2 || !ident(chars[i - 2]))))
            && matches!(next, Some('"') | Some('#'))
        {
            // A raw string r"…" or r#"…"#: ends at a quote followed by as many hashes.
            let mut j = i + 1;
            while chars.get(j) == Some(&'#') {
                j += 1;
            }
            if chars.get(j) != Some(&'"') {
                out.push(c);
                i += 1;
                continue;
            }
            let hashes = j - i - 1;
            out.extend(std::iter::repeat_n(' ', j - i + 1));
            i = j + 1;
            while i < chars.len() {
                if chars[i] == '"' && (1..=hashes).all(|k| chars.get(i + k) == Some(&'#')) {
                    out.extend(std::iter::repeat_n(' ', hashes + 1));
                    i += hashes + 1;
                    break;
                }
                out.push(blank(chars[i]));
                i += 1;
            }
        } else if c == '"' {
            out.push(' ');
            i += 1;
            while i < chars.len() && chars[i] != '"' {
                let step = if chars[i] == '\\' { 2 } else { 1 };
                for k in 0..step {
                    if let Some(&c) = chars.get(i + k) {
                        out.push(blank(c));
                    }
                }
                i += step;
            }
            out.push(' ');
            i += 1;
        } else if c == '\'' {
            // A character literal ('x', '\n', '\u{..}'); otherwise a lifetime, kept.
            let end = if next == Some('\\') {
                // The escaped character itself (at i + 2) may be a quote: '\''.
                (i + 3..chars.len()).find(|&k| chars[k] == '\'')
            } else if chars.get(i + 2) == Some(&'\'') {
                Some(i + 2)
            } else {
                None
            };
            match end {
                Some(end) => {
                    out.extend(std::iter::repeat_n(' ', end - i + 1));
                    i = end + 1;
                }
                None => {
                    out.push(c);
                    i += 1;
                }
            }
        } else {
            out.push(c);
            i += 1;
        }
    }
    out
}

/// The top-level modules named after each `crate::` in `code`: `crate::http::Http` gives
/// `http`; `crate::{finding::Status, redact}` gives `finding` and `redact`.
fn crate_refs(code: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for (at, _) in code.match_indices("crate::") {
        let before = code[..at].chars().next_back();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = code[at + "crate::".len()..].trim_start();
        if let Some(group) = rest.strip_prefix('{') {
            // Split the group's top level at commas; each item starts with a module.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        found.extend(first_ident(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                item.push(c);
            }
            found.extend(first_ident(&item));
        } else {
            found.extend(first_ident(rest));
        }
    }
    found.remove("self");
    found
}

fn first_ident(text: &str) -> Option<String> {
    let name: String = text
        .trim_start()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The graph of `src/`: `src/x.rs` and everything under `src/x/` are module `x`;
/// `lib.rs` and `main.rs` are the crate root, above everything, and left out.
fn graph(src: &Path) -> Graph {
    let mut files = Vec::new();
    rust_files(src, &mut files);
    let mut graph = Graph::new();
    for file in files {
        let rel = file.strip_prefix(src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let module = first.trim_end_matches(".rs").to_string();
        if rel.components().count() == 1 && (module == "lib" || module == "main") {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(crate_refs(&code_only(&text)));
        edges.remove(&module);
    }
    graph
}

/// Each module's shortest way back to itself, one per distinct cycle, written
/// `a -> b -> a` starting from the cycle's alphabetically first module.
fn cycles(graph: &Graph) -> Vec<String> {
    let mut found = BTreeSet::new();
    for start in graph.keys() {
        let mut came_from: BTreeMap<&str, &str> = BTreeMap::new();
        let mut queue = VecDeque::from([start.as_str()]);
        let mut back = None;
        'search: while let Some(at) = queue.pop_front() {
            for next in graph.get(at).into_iter().flatten() {
                if next == start {
                    back = Some(at);
                    break 'search;
                }
                if !came_from.contains_key(next.as_str()) {
                    came_from.insert(next, at);
                    queue.push_back(next);
                }
            }
        }
        let Some(mut at) = back else { continue };
        let mut path = vec![at];
        while at != start {
            at = came_from[at];
            path.push(at);
        }
        path.reverse();
        let first = (0..path.len()).min_by_key(|&k| path[k]).unwrap();
        path.rotate_left(first);
        path.push(path[0]);
        found.insert(path.join(" -> "));
    }
    found.into_iter().collect()
}

#[test]
fn top_level_modules_form_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(graph.contains_key("http"), "src/ not read: {graph:?}");
    let cycles = cycles(&graph);
    assert!(
        cycles.is_empty(),
        "top-level modules of src/ form cycles; a lower module must not name a higher one:\n  {}",
        cycles.join("\n  ")
    );
}

#[test]
fn comments_and_strings_add_no_reference_but_doc_links_do() {
    let code = code_only(
        "use crate::{a::X, b::{c, d}, self};\n\
         // crate::comment\n\
         /* crate::block /* nested */ crate::block2 */\n\
         /// See [`crate::doclink`].\n\
         let s = \"crate::string \\\" crate::escaped\";\n\
         let r = r#\"crate::raw \" crate::raw2\"#;\n\
         let c = '\"'; fn f<'a>(x: &'a str) { crate::path::call(x) }\n\
         let q = ('\\'','\"'); crate::after_quotes::x();\n\
         let t = my_crate::not_ours;",
    );
    let refs: Vec<String> = crate_refs(&code).into_iter().collect();
    assert_eq!(refs, ["a", "after_quotes", "b", "doclink", "path"]);
}

#[test]
fn a_cycle_is_named_from_its_first_module() {
    let mut graph = Graph::new();
    for (from, to) in [
        ("tls", "http"),
        ("http", "tls"),
        ("http", "redact"),
        ("cmd", "http"),
    ] {
        graph.entry(from.into()).or_default().insert(to.into());
    }
    assert_eq!(cycles(&graph), ["http -> tls -> http"]);
}
