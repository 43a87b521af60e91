//! CAPTCHA challenges: five characters from an alphabet without look-alikes,
//! drawn into a bitmap (a greyscale PNG) with their strokes bent, turned,
//! crossed and grained, so that nothing but the pixels carries the answer:
//! an SVG of paths gave a short script the strokes of each glyph in order.
//! The real limit on guessing stays the guard budget and the rate limits.
//! For whoever cannot see the image, the same kind of challenge is read
//! aloud (`audio`).

pub mod audio;

use crate::secret::random_bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// Live challenges at most; beyond that the oldest is forgotten (its user
/// is shown a new one). About 100 bytes each.
pub const MAX_LIVE: usize = 20_000;

/// The live challenges, in memory: digest of the id → digest of the answer
/// and expiry. Not in the database: a challenge is worth nothing after a
/// restart (a new one is drawn), and storing one per page view made the
/// database, and kagi's memory, grow with every visit to ①.
#[derive(Default)]
pub struct Challenges {
    table: Mutex<Table>,
    /// The challenges in the shared database, when several instances run:
    /// one drawn by one instance is answered at another.
    shared: std::sync::OnceLock<std::sync::Arc<dyn Shared>>,
}

impl std::fmt::Debug for Challenges {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Challenges(…)")
    }
}

/// Where challenges are kept when instances share them.
pub trait Shared: Send + Sync {
    fn put_challenge(
        &self,
        id_digest: &str,
        answer_digest: &str,
        expires: u64,
    ) -> Result<(), String>;
    /// Removes the challenge (once, whichever instance asks first) and
    /// returns its answer digest if it was still live.
    fn take_challenge(&self, id_digest: &str, now: u64) -> Result<Option<String>, String>;
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
    /// Keeps the challenges in `shared` from now on, instead of in memory.
    pub fn share_through(&self, shared: std::sync::Arc<dyn Shared>) {
        let _ = self.shared.set(shared);
    }

    /// Keeps a challenge (both digests as hex, as the digester gives them).
    pub fn put(&self, id_digest: &str, answer_digest: &str, expires: u64, now: u64) {
        if let Some(shared) = self.shared.get() {
            if let Err(e) = shared.put_challenge(id_digest, answer_digest, expires) {
                say!("kagi: a CAPTCHA challenge was not kept: {e}");
            }
            return;
        }
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
        if let Some(shared) = self.shared.get() {
            return shared.take_challenge(id_digest, now).ok().flatten();
        }
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let (answer, expires) = t.live.remove(&bytes32(id_digest))?;
        (expires > now).then(|| crate::secret::hex(&answer))
    }
}

/// How a challenge is put to the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Characters drawn in a PNG.
    Image,
    /// Digits read aloud in a WAV.
    Audio,
}

/// A challenge as its page shows it: drawn or read aloud, as a `data:`
/// URI of the PNG or the WAV.
pub struct Shown {
    pub kind: Kind,
    pub data_uri: String,
}

/// A fresh challenge of `kind`: its answer (to keep as a digest) and what
/// its page shows. An audio challenge is read in `voice`.
pub fn challenge(kind: Kind, voice: audio::Voice) -> (String, Shown) {
    let (answer, data_uri) = match kind {
        Kind::Image => {
            let answer = answer();
            let uri = data_uri(&answer);
            (answer, uri)
        }
        Kind::Audio => {
            let answer = audio::answer();
            let uri = audio::data_uri(&answer, voice);
            (answer, uri)
        }
    };
    (answer, Shown { kind, data_uri })
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

/// The image of `answer` as a `data:` URI of a PNG for an `<img>` (the
/// CSP allows `img-src data:`); nothing of it is stored.
pub fn data_uri(answer: &str) -> String {
    use base64ct::{Base64, Encoding};
    format!(
        "data:image/png;base64,{}",
        Base64::encode_string(&png(&render(answer)))
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

    fn bits(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn next(&mut self) -> f64 {
        (self.bits() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }
}

/// The image's size in pixels: five characters of about 50 × 70 pixels,
/// shown at this size on a desktop and scaled to the width of a phone.
pub const WIDTH: usize = 300;
pub const HEIGHT: usize = 110;

/// A grey image, one byte a pixel (0 black, 255 white).
pub struct Bitmap {
    pub pixels: Vec<u8>,
}

/// Ink coverage, 0 to 1 a pixel, as strokes are laid down.
struct Canvas {
    ink: Vec<f64>,
}

impl Canvas {
    /// A stroke from `a` to `b`, `width` pixels wide, anti-aliased.
    fn segment(&mut self, a: (f64, f64), b: (f64, f64), width: f64) {
        let half = width / 2.0;
        let (x0, x1) = (a.0.min(b.0) - half - 1.0, a.0.max(b.0) + half + 1.0);
        let (y0, y1) = (a.1.min(b.1) - half - 1.0, a.1.max(b.1) + half + 1.0);
        let (dx, dy) = (b.0 - a.0, b.1 - a.1);
        let length2 = (dx * dx + dy * dy).max(1e-9);
        for y in (y0.max(0.0) as usize)..(y1.min(HEIGHT as f64 - 1.0).max(0.0) as usize + 1) {
            for x in (x0.max(0.0) as usize)..(x1.min(WIDTH as f64 - 1.0).max(0.0) as usize + 1) {
                let (px, py) = (x as f64 + 0.5, y as f64 + 0.5);
                let t = (((px - a.0) * dx + (py - a.1) * dy) / length2).clamp(0.0, 1.0);
                let (cx, cy) = (a.0 + t * dx, a.1 + t * dy);
                let d2 = (px - cx).powi(2) + (py - cy).powi(2);
                // Most of the box is beyond the stroke's edge: no root.
                if d2 >= (half + 0.5) * (half + 0.5) {
                    continue;
                }
                let cover = (half + 0.5 - d2.sqrt()).clamp(0.0, 1.0);
                let at = y * WIDTH + x;
                self.ink[at] = self.ink[at].max(cover);
            }
        }
    }

    /// A polyline, cut into pieces of 6 pixels each bent by `warp` and given a
    /// width that wanders a little, so that no two strokes are alike.
    fn stroke(
        &mut self,
        points: &[(f64, f64)],
        width: f64,
        warp: &impl Fn((f64, f64)) -> (f64, f64),
        w: &mut Wobble,
    ) {
        let mut previous: Option<(f64, f64)> = None;
        let mut thickness = width;
        for pair in points.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let length = ((b.0 - a.0).powi(2) + (b.1 - a.1).powi(2)).sqrt();
            let pieces = (length / 6.0).ceil().max(1.0) as usize;
            for k in 0..=pieces {
                let t = k as f64 / pieces as f64;
                let here = warp((a.0 + t * (b.0 - a.0), a.1 + t * (b.1 - a.1)));
                if let Some(from) = previous {
                    thickness =
                        (thickness + w.range(-0.35, 0.35)).clamp(width * 0.75, width * 1.25);
                    self.segment(from, here, thickness);
                }
                previous = Some(here);
            }
        }
    }
}

/// Draws `answer` as pixels only: each character from its strokes,
/// scaled, rotated, sheared and moved on its own, close enough to touch
/// its neighbours; the whole bent by two waves; lines drawn through it and
/// stray strokes around it; grain over all. Every glyph has the same ink,
/// so nothing but the shapes of the pixels carries the answer.
pub fn render(answer: &str) -> Bitmap {
    let mut w = Wobble::new();
    let mut canvas = Canvas {
        ink: vec![0.0; WIDTH * HEIGHT],
    };
    // One warp for the whole image: two sine waves across each other.
    let (ax, lx, px) = (w.range(2.5, 4.5), w.range(55.0, 110.0), w.range(0.0, 6.3));
    let (ay, ly, py) = (w.range(2.5, 4.5), w.range(70.0, 140.0), w.range(0.0, 6.3));
    let warp = move |(x, y): (f64, f64)| {
        (
            x + ax * (std::f64::consts::TAU * y / lx + px).sin(),
            y + ay * (std::f64::consts::TAU * x / ly + py).sin(),
        )
    };
    let count = answer.chars().count().max(1) as f64;
    let step = (WIDTH as f64 - 40.0) / count;
    let stroke_width = w.range(4.8, 6.0);
    for (i, c) in answer.chars().enumerate() {
        let (sx, sy) = (w.range(10.0, 12.0), w.range(9.5, 11.0));
        let (sin, cos) = w.range(-0.38, 0.38).sin_cos();
        let shear = w.range(-0.25, 0.25);
        let centre = (
            20.0 + step * (i as f64 + 0.5) + w.range(-4.0, 4.0),
            HEIGHT as f64 / 2.0 + w.range(-6.0, 6.0),
        );
        for line in glyph(c) {
            let points: Vec<(f64, f64)> = line
                .iter()
                .map(|&(x, y)| {
                    // About the glyph's centre: (2, 3) on the 4 × 6 grid.
                    let (x, y) = ((x - 2.0 + shear * (y - 3.0)) * sx, (y - 3.0) * sy);
                    (x * cos - y * sin + centre.0, x * sin + y * cos + centre.1)
                })
                .collect();
            canvas.stroke(&points, stroke_width, &warp, &mut w);
        }
    }
    // Two lines through the text, thinner than its strokes…
    for _ in 0..2 {
        let y0 = w.range(25.0, 75.0);
        let (amp, len, phase) = (w.range(8.0, 18.0), w.range(120.0, 260.0), w.range(0.0, 6.3));
        let line: Vec<(f64, f64)> = (0..=30)
            .map(|k| {
                let x = k as f64 * WIDTH as f64 / 30.0;
                (
                    x,
                    y0 + amp * (std::f64::consts::TAU * x / len + phase).sin(),
                )
            })
            .collect();
        canvas.stroke(&line, w.range(1.8, 2.6), &warp, &mut w);
    }
    // …and short strays as thick as they are, where a reader looks past
    // them and a segmenter does not.
    for _ in 0..7 {
        let (x, y) = (w.range(0.0, WIDTH as f64), w.range(0.0, HEIGHT as f64));
        let (angle, length) = (w.range(0.0, 6.3), w.range(6.0, 14.0));
        let bend = w.range(-4.0, 4.0);
        let stray = [
            (x, y),
            (
                x + length / 2.0 * angle.cos() - bend * angle.sin(),
                y + length / 2.0 * angle.sin() + bend * angle.cos(),
            ),
            (x + length * angle.cos(), y + length * angle.sin()),
        ];
        canvas.stroke(&stray, stroke_width * w.range(0.6, 0.9), &warp, &mut w);
    }
    // Paper, ink and grain: one draw of the generator a pixel, its bytes
    // giving the grain (±5), whether a speck falls there (3 %) and how dark.
    let (light, tilt) = (w.range(236.0, 248.0), w.range(-14.0, 14.0));
    let darkness = w.range(0.78, 0.86);
    let pixels = canvas
        .ink
        .iter()
        .enumerate()
        .map(|(at, ink)| {
            let (x, y) = ((at % WIDTH) as f64, (at / WIDTH) as f64);
            let paper = light + tilt * (x / WIDTH as f64 - 0.5) + 6.0 * (y / HEIGHT as f64 - 0.5);
            let bits = w.bits();
            let grain = (bits & 0xff) as f64 / 25.5 - 5.0;
            let speck = if (bits >> 8) & 0xff < 8 {
                ((bits >> 16) & 0xff) as f64 / 255.0 * 130.0 - 90.0
            } else {
                0.0
            };
            (paper * (1.0 - ink * darkness) + grain + speck).clamp(0.0, 255.0) as u8
        })
        .collect();
    Bitmap { pixels }
}

/// The bitmap as a PNG of 16 greys (4 bits a pixel): enough for the eye,
/// and about 8 KB where 8 bits took three times that. The fastest
/// compression: 40 µs an image, where the balanced one took 780 µs for a
/// larger file (measured 2026-12-01).
pub fn png(bitmap: &Bitmap) -> Vec<u8> {
    let packed: Vec<u8> = bitmap
        .pixels
        .chunks(WIDTH)
        .flat_map(|row| {
            row.chunks(2)
                .map(|p| (p[0] & 0xf0) | (p.get(1).unwrap_or(&0) >> 4))
        })
        .collect();
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, WIDTH as u32, HEIGHT as u32);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Four);
    encoder.set_compression(png::Compression::Fastest);
    let written = encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&packed));
    written.expect("a PNG of the right size writes into memory");
    out
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
    fn the_image_is_pixels_only_and_differs_every_time() {
        let a = "k7emx";
        let first = png(&render(a));
        // (What chunks the PNG holds: portal::the_captcha_image_is_pixels_only….)
        assert!(first.starts_with(b"\x89PNG\r\n\x1a\n"));
        assert!(!first.windows(a.len()).any(|w| w == a.as_bytes()));
        assert_ne!(png(&render(a)), first, "each drawing differs");
        assert!(data_uri(a).starts_with("data:image/png;base64,"));
        // Ink where the glyphs are, paper around them.
        let bitmap = render(a);
        let dark = bitmap.pixels.iter().filter(|p| **p < 120).count();
        assert!(
            (WIDTH * HEIGHT / 20..WIDTH * HEIGHT / 3).contains(&dark),
            "{dark} dark pixels"
        );
    }
}
