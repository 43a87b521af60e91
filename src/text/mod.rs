//! The sites' words in each language. The texts live in one catalogue per
//! language (`ja.txt`, `en.txt`); the build turns them into [`Texts`] and
//! stops when one lacks a text the other has (see build.rs). Japanese is
//! the manuals' language and the default; English is chosen by the
//! browser's `Accept-Language` or by the language link, which a cookie
//! remembers.

use serde::{Deserialize, Serialize};

include!(concat!(env!("OUT_DIR"), "/texts.rs"));

/// The cookie that remembers the language link's choice.
pub const COOKIE: &str = "kagi_lang";

/// A language kagi speaks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lang {
    #[default]
    Ja,
    En,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::Ja, Lang::En];

    pub fn texts(self) -> &'static Texts {
        match self {
            Lang::Ja => &JA,
            Lang::En => &EN,
        }
    }

    /// The BCP 47 tag, for `lang=` and the cookie.
    pub fn tag(self) -> &'static str {
        match self {
            Lang::Ja => "ja",
            Lang::En => "en",
        }
    }

    pub fn from_tag(tag: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.tag() == tag)
    }

    /// The other language, which the language link offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Ja => Lang::En,
            Lang::En => Lang::Ja,
        }
    }

    /// The language of a request: the cookie's choice, else the first of
    /// `Accept-Language` (by weight) kagi speaks, else Japanese.
    pub fn of_request(cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
        if let Some(lang) = cookie.and_then(Lang::from_tag) {
            return lang;
        }
        let mut best: Option<(f32, Lang)> = None;
        for entry in accept_language.unwrap_or("").split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(Some(1.0), |q| q.trim().parse::<f32>().ok())
                .unwrap_or(0.0);
            let primary = tag.split('-').next().unwrap_or("");
            let Some(lang) = Lang::from_tag(primary) else {
                continue;
            };
            if weight > 0.0 && best.is_none_or(|(w, _)| weight > w) {
                best = Some((weight, lang));
            }
        }
        best.map_or(Lang::Ja, |(_, lang)| lang)
    }
}

/// A unit of time as the pages and mails count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Minutes,
    Hours,
}

/// `n` of `unit` in words: `30分`, `1 hour`, `2 minutes`.
pub fn span(t: &Texts, n: u64, unit: Unit) -> String {
    let template = match (unit, n == 1) {
        (Unit::Seconds, true) => t.c_second,
        (Unit::Seconds, false) => t.c_seconds,
        (Unit::Minutes, true) => t.c_minute,
        (Unit::Minutes, false) => t.c_minutes,
        (Unit::Hours, true) => t.m_hour,
        (Unit::Hours, false) => t.m_hours,
    };
    fill(template, &[("n", &n.to_string())])
}

/// `text` with each `{name}` replaced by its value.
pub fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (name, value) in values {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The parts of `text` before and after `{name}`, for markup around the
/// value (an address in bold, a link in a sentence).
pub fn around<'t>(text: &'t str, name: &str) -> (&'t str, &'t str) {
    text.split_once(&format!("{{{name}}}"))
        .unwrap_or((text, ""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_wins_then_the_heaviest_language_kagi_speaks() {
        assert_eq!(Lang::of_request(None, None), Lang::Ja);
        assert_eq!(Lang::of_request(None, Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(
            Lang::of_request(None, Some("fr, en;q=0.5, ja;q=0.8")),
            Lang::Ja
        );
        assert_eq!(Lang::of_request(None, Some("fr, de")), Lang::Ja);
        assert_eq!(Lang::of_request(None, Some("en;q=0")), Lang::Ja);
        assert_eq!(Lang::of_request(Some("ja"), Some("en")), Lang::Ja);
        assert_eq!(Lang::of_request(Some("xx"), Some("en-GB")), Lang::En);
    }

    #[test]
    fn every_text_is_said_in_every_language() {
        // The build already refuses a missing key; this checks what the
        // build cannot: a text copied over untranslated.
        let ja = format!("{JA:?}");
        let en = format!("{EN:?}");
        assert!(
            !en.chars().any(|c| ('\u{3040}'..='\u{30ff}').contains(&c)),
            "kana in English"
        );
        assert_ne!(ja, en);
    }

    #[test]
    fn placeholders_are_filled_and_split() {
        assert_eq!(fill("{a} and {b}", &[("a", "1"), ("b", "2")]), "1 and 2");
        assert_eq!(around("sent to {email}.", "email"), ("sent to ", "."));
        assert_eq!(span(&EN, 1, Unit::Minutes), "1 minute");
        assert_eq!(span(&EN, 2, Unit::Minutes), "2 minutes");
        assert_eq!(span(&JA, 1, Unit::Hours), "1時間");
    }
}
