//! The boundaries of ARCHITECTURE.md, checked on the source: each test
//! fails, naming the file and the line, when a change breaks one. They read
//! `src/` as text (comments left out), so they hold for every build.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// One source file: its top-level module (`store` for src/store/mod.rs and
/// src/store/sweep.rs) and its lines of code, numbered, without comments
/// and without its unit tests.
struct Source {
    path: String,
    module: String,
    lines: Vec<(usize, String)>,
}

fn sources() -> Vec<Source> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    walk(&root, &mut files);
    files.sort();
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&root).unwrap();
            let first = relative.components().next().unwrap();
            let first = first.as_os_str().to_str().unwrap();
            let module = first.strip_suffix(".rs").unwrap_or(first).to_string();
            let text = std::fs::read_to_string(&file).unwrap();
            Source {
                path: format!("src/{}", relative.display()),
                module,
                lines: code_lines(&text),
            }
        })
        .collect()
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The lines that are code: comment lines and trailing comments dropped,
/// and nothing from the unit-test module on (`#[cfg(test)]` at the left
/// margin, as every file writes it).
fn code_lines(text: &str) -> Vec<(usize, String)> {
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with("#[cfg(test)]") {
            break;
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("//") {
            continue;
        }
        let code = match line.find(" // ") {
            Some(at) => &line[..at],
            None => line,
        };
        lines.push((i + 1, code.to_string()));
    }
    lines
}

/// Every place outside the allowed modules whose code names `word`.
fn named_outside(word: &str, allowed: &[&str]) -> Vec<String> {
    let mut found = Vec::new();
    for source in sources() {
        if allowed.contains(&source.module.as_str()) {
            continue;
        }
        for (n, line) in &source.lines {
            if names(line, word) {
                found.push(format!("{}:{n}: {}", source.path, line.trim()));
            }
        }
    }
    found
}

/// Whether `line` holds `word` as a whole identifier path segment.
fn names(line: &str, word: &str) -> bool {
    let is_ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    line.match_indices(word).any(|(at, _)| {
        let before = line[..at].chars().next_back();
        let after = line[at + word.len()..].chars().next();
        !before.is_some_and(is_ident) && !after.is_some_and(is_ident)
    })
}

/// The kagi modules a line names through `crate::`: `crate::store::Store`,
/// `crate::{app, http}`.
fn crate_modules(line: &str) -> Vec<String> {
    let mut modules = Vec::new();
    let mut rest = line;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if name.chars().next().is_some_and(|c| c.is_ascii_lowercase()) {
                    modules.push(name);
                }
            }
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            modules.push(name);
        }
    }
    modules
}

/// Which kagi modules each module names (the crate root, which declares
/// them all, left out).
fn import_graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for source in sources() {
        if matches!(source.module.as_str(), "lib" | "main") {
            continue;
        }
        let edges = graph.entry(source.module.clone()).or_default();
        for (_, line) in &source.lines {
            for module in crate_modules(line) {
                if module != source.module && module != "say" {
                    edges.insert(module);
                }
            }
        }
    }
    graph
}

/// A cycle of the graph, as the path that closes it, if there is one.
fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|n| n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node.to_string());
            return Some(cycle);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        if let Some(cycle) = visit(node, graph, &mut Vec::new(), &mut done) {
            return Some(cycle);
        }
    }
    None
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = import_graph();
    if let Some(cycle) = find_cycle(&graph) {
        panic!(
            "the modules name each other in a cycle: {}",
            cycle.join(" → ")
        );
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let mut graph = BTreeMap::new();
    graph.insert("a".to_string(), BTreeSet::from(["b".to_string()]));
    graph.insert("b".to_string(), BTreeSet::from(["c".to_string()]));
    graph.insert("c".to_string(), BTreeSet::from(["a".to_string()]));
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
    graph.insert("c".to_string(), BTreeSet::new());
    assert_eq!(find_cycle(&graph), None);
    assert_eq!(
        crate_modules("use crate::{app, http::Request}; crate::store::DAY"),
        ["app", "http", "store"]
    );
}

#[test]
fn only_http_names_tiny_http() {
    let found = named_outside("tiny_http", &["http"]);
    assert!(
        found.is_empty(),
        "tiny_http outside http/:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_store_names_sled() {
    let found = named_outside("sled", &["store"]);
    assert!(
        found.is_empty(),
        "sled outside store/:\n{}",
        found.join("\n")
    );
}

#[test]
fn only_mail_names_mail_send() {
    let found = named_outside("mail_send", &["mail"]);
    assert!(
        found.is_empty(),
        "mail_send outside mail/:\n{}",
        found.join("\n")
    );
}

/// Pages are pure: what they show comes in as data.
#[test]
fn pages_name_neither_the_store_nor_the_clock() {
    let graph = import_graph();
    let pages = &graph["pages"];
    for layer in ["store", "clock", "app", "sites", "http"] {
        assert!(
            !pages.contains(layer),
            "pages/ names crate::{layer}: pages take plain data"
        );
    }
    let mut found = Vec::new();
    for source in sources().iter().filter(|s| s.module == "pages") {
        for (n, line) in &source.lines {
            if ["SystemTime", "Instant", "sled"]
                .iter()
                .any(|w| names(line, w))
            {
                found.push(format!("{}:{n}: {}", source.path, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "pages/ reads a clock or the store:\n{}",
        found.join("\n")
    );
}

/// The config is at the bottom: every layer reads it, it reads none. The
/// one thing it takes is the leaf `address` (the mail-address rule), which
/// names nothing of kagi's itself.
#[test]
fn config_names_nothing_of_kagis_but_the_address_rule() {
    let graph = import_graph();
    let config: Vec<_> = graph["config"].iter().collect();
    assert_eq!(config, ["address"], "config names kagi modules");
    assert!(graph["address"].is_empty(), "address names kagi modules");
    assert!(graph["site"].is_empty(), "site names kagi modules");
    assert!(graph["clock"].is_empty(), "clock names kagi modules");
}

/// Nothing below the request loop reads the time: `now` is a parameter
/// (tests move the clock instead of sleeping).
#[test]
fn only_the_clock_reads_the_time_of_day() {
    let found: Vec<_> = named_outside("SystemTime", &["clock", "http"])
        .into_iter()
        .chain(named_outside("UNIX_EPOCH", &["clock"]))
        .collect();
    assert!(
        found.is_empty(),
        "wall-clock reads outside clock.rs:\n{}",
        found.join("\n")
    );
}

/// ARCHITECTURE.md's code map names every file of `src/` (a directory's
/// `mod.rs` as the directory), and names no file that is gone.
#[test]
fn the_code_map_names_every_module() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    // The map is the section "## Code map", up to the next section.
    let map = text
        .split("\n## Code map")
        .nth(1)
        .expect("a section ## Code map");
    let map = map.split("\n## ").next().unwrap();
    let mut files = Vec::new();
    walk(&root.join("src"), &mut files);
    let missing: Vec<String> = files
        .iter()
        .map(|f| {
            let relative = f.strip_prefix(root.join("src")).unwrap();
            let name = relative.display().to_string();
            name.strip_suffix("/mod.rs")
                .map_or(name.clone(), |d| format!("{d}/"))
        })
        .filter(|name| !map.contains(&format!("`{name}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name: {}",
        missing.join(", ")
    );
    let named: Vec<&str> = map
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|n| n.ends_with(".rs") || (n.ends_with('/') && !n.contains(' ')))
        .collect();
    let gone: Vec<&&str> = named
        .iter()
        .filter(|n| !root.join("src").join(n).exists())
        .collect();
    assert!(
        gone.is_empty(),
        "ARCHITECTURE.md names what src/ does not have: {gone:?}"
    );
}

/// The sites' words live in the language catalogues (src/text/*.txt),
/// where the build makes sure every language has each one: no Japanese
/// written into the code of the sites' pages, handlers or mails, where it
/// would reach an English reader untranslated. (The console and the demo's
/// own pages speak Japanese only, and say so.)
#[test]
fn the_sites_words_come_from_the_catalogues() {
    let speaks = |path: &str| {
        path.starts_with("src/sites/")
            || [
                "src/pages/mod.rs",
                "src/pages/kaigo.rs",
                "src/pages/portal.rs",
            ]
            .contains(&path)
            || [
                "src/mail/templates.rs",
                "src/policy.rs",
                "src/http/mod.rs",
                "src/router.rs",
            ]
            .contains(&path)
    };
    let japanese =
        |c: char| ('\u{3040}'..='\u{30ff}').contains(&c) || ('\u{4e00}'..='\u{9fff}').contains(&c);
    let mut found = Vec::new();
    for source in sources().iter().filter(|s| speaks(&s.path)) {
        for (n, line) in &source.lines {
            let quoted = line.split('"').skip(1).step_by(2);
            if quoted.into_iter().any(|q| q.chars().any(japanese)) {
                found.push(format!("{}:{n}: {}", source.path, line.trim()));
            }
        }
    }
    assert!(
        found.is_empty(),
        "words outside the catalogues:\n{}",
        found.join("\n")
    );
}
