//! Turns the language catalogues (src/text/ja.txt, src/text/en.txt) into
//! one `Texts` struct and a constant of it per language, so that a text
//! missing from one catalogue, or one whose placeholders differ from the
//! Japanese, stops the build instead of showing an empty string.
//!
//! A catalogue is lines of `key = text`; `key = <<` opens a text of several
//! lines, closed by a line `>>`. `#` starts a comment line. A placeholder
//! is a name in braces: `{email}`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

const LANGUAGES: [(&str, &str); 2] = [("JA", "src/text/ja.txt"), ("EN", "src/text/en.txt")];

fn main() {
    let catalogues: Vec<(&str, BTreeMap<String, String>)> = LANGUAGES
        .iter()
        .map(|(name, path)| {
            println!("cargo:rerun-if-changed={path}");
            let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
            (*name, parse(path, &text))
        })
        .collect();
    let (_, first) = &catalogues[0];
    let mut problems = Vec::new();
    for ((name, catalogue), (_, path)) in catalogues.iter().zip(LANGUAGES) {
        for key in first.keys().filter(|k| !catalogue.contains_key(*k)) {
            problems.push(format!("{path}: no text for `{key}`"));
        }
        for key in catalogue.keys().filter(|k| !first.contains_key(*k)) {
            problems.push(format!("{path}: `{key}` is in no other catalogue"));
        }
        for (key, text) in catalogue {
            if text.trim().is_empty() {
                problems.push(format!("{path}: `{key}` is empty"));
            }
            if let Some(ja) = first.get(key) {
                if placeholders(ja) != placeholders(text) {
                    problems.push(format!(
                        "{path}: `{key}` has placeholders {:?}, the {} catalogue {:?}",
                        placeholders(text),
                        LANGUAGES[0].0,
                        placeholders(ja)
                    ));
                }
            }
        }
        let _ = name;
    }
    if !problems.is_empty() {
        panic!("the language catalogues disagree:\n{}", problems.join("\n"));
    }
    let mut out = String::from(
        "/// Every text of the sites' screens and mails, one field per text.\n\
         #[derive(Debug)]\npub struct Texts {\n",
    );
    for key in first.keys() {
        writeln!(out, "    pub {key}: &'static str,").unwrap();
    }
    out.push_str("}\n");
    for (name, catalogue) in &catalogues {
        writeln!(out, "pub const {name}: Texts = Texts {{").unwrap();
        for (key, text) in catalogue {
            writeln!(out, "    {key}: {text:?},").unwrap();
        }
        out.push_str("};\n");
    }
    let dest = Path::new(&std::env::var("OUT_DIR").unwrap()).join("texts.rs");
    std::fs::write(dest, out).unwrap();
}

fn parse(path: &str, text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines().enumerate();
    while let Some((n, line)) = lines.next() {
        let line = line.trim_end();
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once(" = ") else {
            panic!("{path}:{}: expected `key = text`", n + 1);
        };
        let key = key.trim();
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            panic!(
                "{path}:{}: a key is lower-case letters, digits and _",
                n + 1
            );
        }
        let value = if value == "<<" {
            let mut block = Vec::new();
            loop {
                match lines.next() {
                    Some((_, ">>")) => break,
                    Some((_, l)) => block.push(l),
                    None => panic!("{path}:{}: `<<` never closed by `>>`", n + 1),
                }
            }
            block.join("\n")
        } else {
            value.to_string()
        };
        if out.insert(key.to_string(), value).is_some() {
            panic!("{path}:{}: `{key}` twice", n + 1);
        }
    }
    out
}

/// The placeholders of a text, sorted.
fn placeholders(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = text
        .split('{')
        .skip(1)
        .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
        .filter(|name| !name.is_empty() && name.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect();
    out.sort_unstable();
    out
}
