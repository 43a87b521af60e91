//! CAPTCHA challenges: five characters from an alphabet without look-alikes,
//! drawn as distorted strokes with noise into an SVG of paths only, so the
//! answer never appears in the markup as text.

use crate::secret::random_bytes;
use std::collections::{HashMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;

/// Live challenges at most; beyond that the oldest is forgotten (its user
/// is shown a new one). About 100 bytes each.
pub const MAX_LIVE: usize = 20_000;

/// The live challenges, in memory: digest of the id → digest of the answer
/// and expiry. Not in the database: a challenge is worth nothing after a
/// restart (a new one is drawn), and storing one per page view made the
/// database, and kagi's memory, grow with every visit to ①.
#[derive(Debug, Default)]
pub struct Challenges {
    table: Mutex<Table>,
}

#[derive(Debug, Default)]
struct Table {
    live: HashMap<[u8; 32], ([u8; 32], u64)>,
    /// Insertion order, for forgetting the oldest.
    order: VecDeque<[u8; 32]>,
}

fn bytes32(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, b) in out.iter_mut().enumerate() {
        *b = hex
            .get(2 * i..2 * i + 2)
            .and_then(|h| u8::from_str_radix(h, 16).ok())
            .unwrap_or(0);
    }
    out
}

impl Challenges {
    /// Keeps a challenge (both digests as hex, as the digester gives them).
    pub fn put(&self, id_digest: &str, answer_digest: &str, expires: u64, now: u64) {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        // Expired or already taken ones at the front go first.
        while let Some(front) = t.order.front().copied() {
            match t.live.get(&front) {
                Some((_, exp)) if *exp > now && t.live.len() < MAX_LIVE => break,
                _ => {
                    t.order.pop_front();
                    t.live.remove(&front);
                }
            }
        }
        let key = bytes32(id_digest);
        t.live.insert(key, (bytes32(answer_digest), expires));
        t.order.push_back(key);
    }

    /// Removes a challenge and returns its answer digest (hex) if it was
    /// still live: each answers once, right or wrong.
    pub fn take(&self, id_digest: &str, now: u64) -> Option<String> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let (answer, expires) = t.live.remove(&bytes32(id_digest))?;
        (expires > now).then(|| crate::secret::hex(&answer))
    }
}

/// Characters that cannot be mistaken for one another in this font: no
/// 0/o, 1/l/i, 8/b, 9/g/q, s/5-like pairs, and no descenders.
pub const ALPHABET: &[u8] = b"234567acdefhkmnrtuvwx";

/// Characters per challenge.
pub const LENGTH: usize = 5;

/// A fresh answer, each character uniform over `ALPHABET`.
pub fn answer() -> String {
    let n = ALPHABET.len() as u8;
    // Rejection sampling keeps every character equally likely.
    let limit = u8::MAX - u8::MAX % n;
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        let b = random_bytes::<1>()[0];
        if b < limit {
            out.push(ALPHABET[(b % n) as usize] as char);
        }
    }
    out
}

/// The image of `answer` as a `data:` URI for an `<img>` (the CSP allows
/// `img-src data:`); nothing of it is stored.
pub fn data_uri(answer: &str) -> String {
    use base64ct::{Base64, Encoding};
    format!(
        "data:image/svg+xml;base64,{}",
        Base64::encode_string(render(answer).as_bytes())
    )
}

/// The strokes of each glyph on a 4 × 6 grid (y grows downwards; lower-case
/// letters span 2–6).
fn glyph(c: char) -> &'static [&'static [(f64, f64)]] {
    match c {
        '2' => &[&[
            (0.3, 1.0),
            (1.5, 0.0),
            (3.0, 0.0),
            (3.8, 1.0),
            (3.6, 2.5),
            (0.2, 6.0),
            (4.0, 6.0),
        ]],
        '3' => &[&[
            (0.0, 0.0),
            (4.0, 0.0),
            (2.0, 2.5),
            (3.6, 3.2),
            (4.0, 4.8),
            (3.0, 6.0),
            (1.0, 6.0),
            (0.0, 5.0),
        ]],
        '4' => &[&[(3.0, 6.0), (3.0, 0.0), (0.0, 4.0), (4.0, 4.0)]],
        '5' => &[&[
            (3.7, 0.0),
            (0.7, 0.0),
            (0.4, 2.8),
            (2.0, 2.4),
            (3.5, 3.0),
            (4.0, 4.5),
            (3.3, 5.7),
            (2.0, 6.0),
            (0.3, 5.4),
        ]],
        '6' => &[&[
            (3.5, 0.0),
            (1.0, 1.5),
            (0.0, 4.0),
            (0.5, 5.5),
            (2.0, 6.0),
            (3.5, 5.5),
            (4.0, 4.5),
            (3.0, 3.2),
            (1.5, 3.2),
            (0.2, 4.0),
        ]],
        '7' => &[&[(0.0, 0.0), (4.0, 0.0), (1.5, 6.0)]],
        'a' => &[
            &[(0.5, 2.3), (2.0, 2.0), (3.5, 2.5), (3.5, 6.0)],
            &[
                (3.5, 3.8),
                (1.5, 3.8),
                (0.3, 4.8),
                (1.0, 6.0),
                (2.5, 6.0),
                (3.5, 5.0),
            ],
        ],
        'c' => &[&[
            (3.8, 2.5),
            (2.5, 2.0),
            (1.0, 2.3),
            (0.2, 4.0),
            (1.0, 5.7),
            (2.5, 6.0),
            (3.8, 5.5),
        ]],
        'd' => &[
            &[(3.5, 0.0), (3.5, 6.0)],
            &[
                (3.5, 3.0),
                (2.0, 2.0),
                (0.5, 2.7),
                (0.2, 4.2),
                (0.8, 5.7),
                (2.0, 6.0),
                (3.5, 5.0),
            ],
        ],
        'e' => &[&[
            (0.2, 4.0),
            (3.8, 4.0),
            (3.5, 2.7),
            (2.0, 2.0),
            (0.7, 2.6),
            (0.2, 4.0),
            (0.8, 5.6),
            (2.2, 6.0),
            (3.6, 5.5),
        ]],
        'f' => &[
            &[(3.5, 0.3), (2.5, 0.0), (1.7, 0.6), (1.5, 1.5), (1.5, 6.0)],
            &[(0.3, 2.3), (3.3, 2.3)],
        ],
        'h' => &[
            &[(0.5, 0.0), (0.5, 6.0)],
            &[(0.5, 3.2), (1.5, 2.2), (2.8, 2.0), (3.5, 2.8), (3.5, 6.0)],
        ],
        'k' => &[
            &[(0.5, 0.0), (0.5, 6.0)],
            &[(3.5, 2.0), (0.5, 4.2)],
            &[(1.6, 3.4), (3.7, 6.0)],
        ],
        'm' => &[
            &[(0.2, 6.0), (0.2, 2.0)],
            &[(0.2, 2.8), (1.0, 2.0), (1.8, 2.5), (2.0, 6.0)],
            &[(2.0, 2.8), (2.8, 2.0), (3.6, 2.5), (3.8, 6.0)],
        ],
        'n' => &[
            &[(0.5, 6.0), (0.5, 2.0)],
            &[(0.5, 3.0), (1.6, 2.0), (2.8, 2.0), (3.5, 2.8), (3.5, 6.0)],
        ],
        'r' => &[
            &[(0.8, 6.0), (0.8, 2.0)],
            &[(0.8, 3.5), (2.0, 2.3), (3.5, 2.0)],
        ],
        't' => &[
            &[(1.6, 0.5), (1.6, 5.3), (2.3, 6.0), (3.5, 5.8)],
            &[(0.3, 2.2), (3.3, 2.2)],
        ],
        'u' => &[
            &[(0.5, 2.0), (0.5, 5.0), (1.3, 6.0), (2.5, 6.0), (3.5, 5.0)],
            &[(3.5, 2.0), (3.5, 6.0)],
        ],
        'v' => &[&[(0.2, 2.0), (2.0, 6.0), (3.8, 2.0)]],
        'w' => &[&[(0.0, 2.0), (1.0, 6.0), (2.0, 3.2), (3.0, 6.0), (4.0, 2.0)]],
        'x' => &[&[(0.3, 2.0), (3.7, 6.0)], &[(3.7, 2.0), (0.3, 6.0)]],
        _ => &[],
    }
}

/// A small xorshift generator for the drawing's wobble: the geometry needs
/// variety, not secrecy (the answer comes from the OS source).
struct Wobble(u64);

impl Wobble {
    fn new() -> Wobble {
        Wobble(u64::from_le_bytes(random_bytes::<8>()) | 1)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

const WIDTH: f64 = 220.0;
const HEIGHT: f64 = 80.0;

/// The SVG: each glyph scaled, rotated, sheared and jittered point by point,
/// over and under curves and specks of noise.
pub fn render(answer: &str) -> String {
    let mut w = Wobble::new();
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}"><rect width="100%" height="100%" fill="#f2f4f0"/>"##
    );
    let colour = |w: &mut Wobble| {
        format!(
            "rgb({},{},{})",
            w.range(20.0, 110.0) as u8,
            w.range(20.0, 110.0) as u8,
            w.range(40.0, 130.0) as u8
        )
    };
    // Background curves and specks.
    for _ in 0..5 {
        let c = colour(&mut w);
        let _ = write!(
            svg,
            r#"<path d="M{:.1} {:.1} C{:.1} {:.1} {:.1} {:.1} {:.1} {:.1}" stroke="{c}" stroke-width="{:.1}" fill="none" opacity="0.6"/>"#,
            w.range(0.0, 30.0),
            w.range(0.0, HEIGHT),
            w.range(40.0, 100.0),
            w.range(-20.0, HEIGHT + 20.0),
            w.range(120.0, 180.0),
            w.range(-20.0, HEIGHT + 20.0),
            w.range(190.0, WIDTH),
            w.range(0.0, HEIGHT),
            w.range(0.8, 2.0)
        );
    }
    for _ in 0..60 {
        let _ = write!(
            svg,
            r#"<circle cx="{:.1}" cy="{:.1}" r="{:.1}" fill="{}" opacity="0.5"/>"#,
            w.range(0.0, WIDTH),
            w.range(0.0, HEIGHT),
            w.range(0.5, 1.8),
            colour(&mut w)
        );
    }
    // The glyphs.
    let step = (WIDTH - 30.0) / answer.len().max(1) as f64;
    for (i, c) in answer.chars().enumerate() {
        let (sx, sy) = (w.range(6.0, 8.0), w.range(7.0, 9.0));
        let angle = w.range(-0.45, 0.45);
        let shear = w.range(-0.3, 0.3);
        let (ox, oy) = (
            15.0 + i as f64 * step + w.range(-3.0, 3.0),
            w.range(8.0, 20.0),
        );
        let (sin, cos) = angle.sin_cos();
        let stroke = colour(&mut w);
        let width = w.range(2.4, 3.4);
        for line in glyph(c) {
            let mut d = String::new();
            for (k, &(x, y)) in line.iter().enumerate() {
                let (x, y) = (
                    x - 2.0 + w.range(-0.2, 0.2) + shear * (y - 3.0),
                    y - 3.0 + w.range(-0.2, 0.2),
                );
                let (x, y) = (x * sx, y * sy);
                let (x, y) = (
                    x * cos - y * sin + ox + 2.0 * sx,
                    x * sin + y * cos + oy + 3.0 * sy,
                );
                let _ = write!(d, "{}{x:.1} {y:.1}", if k == 0 { "M" } else { " L" });
            }
            let _ = write!(
                svg,
                r#"<path d="{d}" stroke="{stroke}" stroke-width="{width:.1}" fill="none" stroke-linecap="round" stroke-linejoin="round"/>"#
            );
        }
    }
    // Curves across the text, so that the glyphs do not separate cleanly.
    for _ in 0..2 {
        let c = colour(&mut w);
        let _ = write!(
            svg,
            r#"<path d="M0 {:.1} Q{:.1} {:.1} {WIDTH} {:.1}" stroke="{c}" stroke-width="{:.1}" fill="none"/>"#,
            w.range(25.0, 55.0),
            w.range(60.0, 160.0),
            w.range(0.0, HEIGHT),
            w.range(25.0, 55.0),
            w.range(1.2, 2.2)
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod challenge_tests {
    use super::*;

    #[test]
    fn a_challenge_answers_once_before_its_time_and_the_table_is_bounded() {
        let c = Challenges::default();
        let id = |n: u32| {
            crate::secret::hex(
                &[
                    n.to_be_bytes(),
                    [0; 4],
                    [0; 4],
                    [0; 4],
                    [0; 4],
                    [0; 4],
                    [0; 4],
                    [0; 4],
                ]
                .concat(),
            )
        };
        let answer = crate::secret::hex(&[7u8; 32]);
        c.put(&id(1), &answer, 100, 0);
        c.put(&id(2), &answer, 100, 0);
        assert_eq!(c.take(&id(1), 99), Some(answer.clone()));
        assert_eq!(c.take(&id(1), 99), None, "once");
        assert_eq!(c.take(&id(2), 100), None, "not after its time");
        for n in 0..(MAX_LIVE as u32 + 10) {
            c.put(&id(n + 10), &answer, 1000, 0);
        }
        let t = c.table.lock().unwrap();
        assert!(t.live.len() <= MAX_LIVE + 1);
        assert!(!t.live.contains_key(&bytes32(&id(10))), "the oldest went");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_use_the_alphabet_uniformly() {
        let mut counts = [0usize; 256];
        for _ in 0..4200 {
            let a = answer();
            assert_eq!(a.len(), LENGTH);
            for b in a.bytes() {
                assert!(ALPHABET.contains(&b), "{a}");
                counts[b as usize] += 1;
            }
        }
        // 21,000 draws over 21 characters: 1,000 expected each.
        for &b in ALPHABET {
            assert!(
                (800..1200).contains(&counts[b as usize]),
                "{} drawn {}",
                b as char,
                counts[b as usize]
            );
        }
    }

    #[test]
    fn every_character_has_strokes() {
        for &b in ALPHABET {
            assert!(!glyph(b as char).is_empty(), "{}", b as char);
        }
    }

    #[test]
    fn the_image_holds_no_text() {
        let a = "k7emx";
        let svg = render(a);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(!svg.contains("<text"));
        // Strip the SVG's own vocabulary; what is left must not spell the answer.
        let letters: String = svg
            .split(|c: char| !c.is_ascii_alphabetic())
            .filter(|w| {
                ![
                    "svg", "xmlns", "http", "www", "w", "org", "width", "height", "viewBox",
                    "rect", "fill", "path", "d", "M", "L", "C", "Q", "stroke", "none", "opacity",
                    "circle", "cx", "cy", "r", "rgb", "linecap", "round", "linejoin", "f", "e",
                ]
                .contains(w)
            })
            .collect();
        assert!(!letters.contains(a), "{letters}");
        assert!(!svg.contains(a));
        assert_ne!(render(a), svg, "each drawing differs");
        assert!(data_uri(a).starts_with("data:image/svg+xml;base64,"));
    }
}
