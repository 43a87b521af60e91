//! The CAPTCHA read aloud, for whoever cannot see its image (WCAG 1.1.1):
//! six digits, each spoken by a short recorded sample (`voice/`, made by
//! `scripts/voice-samples.py`), laid out with random gaps, each read at
//! its own speed and loudness, over a faint babble of other digits played
//! backwards and a low hiss. Every WAV differs, even of the same digits,
//! so that its bytes do not map to its answer; a program that knows the
//! samples can still pick the digits out (this module's tests do). As for
//! the image, the real limit on guessing is the rate limits: an audio
//! challenge is one more challenge of the same table, bucket and lifetime.

use super::Wobble;
use crate::secret::random_bytes;

/// The language the digits are read in. The pages are Japanese, so they
/// ask for `Japanese`; `English` is there for English pages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Voice {
    Japanese,
    // Built only by the tests until the English pages ask for it.
    #[allow(dead_code)]
    English,
}

/// The recorded digits 0–9 of each voice: 8 kHz, mono, 8-bit WAV, cut to
/// the speech, peaking at 0.9 of full scale, with nothing above 3.6 kHz.
const JAPANESE: [&[u8]; 10] = [
    include_bytes!("voice/ja/0.wav"),
    include_bytes!("voice/ja/1.wav"),
    include_bytes!("voice/ja/2.wav"),
    include_bytes!("voice/ja/3.wav"),
    include_bytes!("voice/ja/4.wav"),
    include_bytes!("voice/ja/5.wav"),
    include_bytes!("voice/ja/6.wav"),
    include_bytes!("voice/ja/7.wav"),
    include_bytes!("voice/ja/8.wav"),
    include_bytes!("voice/ja/9.wav"),
];
const ENGLISH: [&[u8]; 10] = [
    include_bytes!("voice/en/0.wav"),
    include_bytes!("voice/en/1.wav"),
    include_bytes!("voice/en/2.wav"),
    include_bytes!("voice/en/3.wav"),
    include_bytes!("voice/en/4.wav"),
    include_bytes!("voice/en/5.wav"),
    include_bytes!("voice/en/6.wav"),
    include_bytes!("voice/en/7.wav"),
    include_bytes!("voice/en/8.wav"),
    include_bytes!("voice/en/9.wav"),
];

impl Voice {
    fn samples(self) -> &'static [&'static [u8]; 10] {
        match self {
            Voice::Japanese => &JAPANESE,
            Voice::English => &ENGLISH,
        }
    }
}

/// Digits per audio challenge: few enough to hold after one hearing (the
/// player plays them again), and 10⁶ answers.
pub const LENGTH: usize = 6;

/// Samples a second, of the recordings and of the WAV: a telephone's, and
/// about 8 KB a second of sound at one byte a sample.
pub const RATE: usize = 8000;

// The levels, as amplitudes of full scale (1.0). The digits stay far
// above everything else: a person has to follow them through a phone's
// speaker, and what lies beside them is meant to be faint. Over a whole
// digit, the speech's RMS is 0.076 to 0.22 (−22 to −13 dBFS, the
// recordings' RMS being 0.13 to 0.23 at a peak of 0.9), the background's
// (babble and hiss) 0.011 to 0.019 (−39 to −34 dBFS): the voice is 12 dB
// above it at the least, about 19 dB as a rule.
/// Each digit's gain on a recording that peaks at 0.9: peaks of 0.54 to
/// 0.86 (−5.4 to −1.3 dBFS), so that loudness tells nothing.
const DIGIT_GAIN: (f32, f32) = (0.6, 0.95);
/// The babble's gain: reversed digits peaking at 0.036 to 0.059 (−29 to
/// −25 dBFS), at least 19 dB below the quietest digit's peak. It fills
/// the gaps, so that no gap is silence.
const BABBLE_GAIN: (f32, f32) = (0.04, 0.065);
/// The hiss's RMS: −40 dBFS, under the babble; the 8-bit steps' own noise
/// is at −53 dBFS.
const HISS_RMS: f32 = 0.01;
/// How much faster (above 1) or slower each digit is read, pitch and
/// speed together: ±8 %, about a semitone and a third. The recordings
/// carry nothing above 3.6 kHz, so reading one 8 % faster moves nothing
/// past the 4 kHz that 8,000 samples a second can hold: no aliasing.
const SPEED: (f32, f32) = (0.92, 1.08);
/// Seconds before the first digit, between two, and after the last.
const LEAD_SECS: (f32, f32) = (0.35, 0.7);
const GAP_SECS: (f32, f32) = (0.3, 0.65);
const TAIL_SECS: f32 = 0.4;

/// A fresh answer: `LENGTH` digits, each uniform.
pub fn answer() -> String {
    let mut out = String::with_capacity(LENGTH);
    while out.len() < LENGTH {
        let b = random_bytes::<1>()[0];
        // Rejection sampling keeps every digit equally likely.
        if b < 250 {
            out.push(char::from(b'0' + b % 10));
        }
    }
    out
}

/// The sound of `answer` as a `data:` URI of a WAV for an `<audio>` (the
/// CSP allows `media-src data:`); nothing of it is stored.
pub fn data_uri(answer: &str, voice: Voice) -> String {
    use base64ct::{Base64, Encoding};
    format!(
        "data:audio/wav;base64,{}",
        Base64::encode_string(&wav(answer, voice))
    )
}

/// The data of a WAV file (its `data` chunk), if it is one.
fn data_chunk(wav: &[u8]) -> Option<&[u8]> {
    if wav.get(..4)? != b"RIFF" || wav.get(8..12)? != b"WAVE" {
        return None;
    }
    let mut at = 12;
    while at + 8 <= wav.len() {
        let size = u32::from_le_bytes(wav[at + 4..at + 8].try_into().ok()?) as usize;
        let body = wav.get(at + 8..at + 8 + size)?;
        if &wav[at..at + 4] == b"data" {
            return Some(body);
        }
        at += 8 + size + size % 2;
    }
    None
}

/// A recording of `voice/` as samples from −1 to 1.
fn recording(wav: &[u8]) -> Vec<f32> {
    // Every recording is checked by `every_recording_is_a_short_8_khz_wav`.
    let data = data_chunk(wav).expect("the recordings of voice/ are WAV files");
    data.iter()
        .map(|&b| (f32::from(b) - 128.0) / 128.0)
        .collect()
}

/// `clip` read `speed` times as fast (and as high), times `gain`: four
/// points' cubic (Catmull–Rom) interpolation between its samples.
fn resample(clip: &[f32], speed: f32, gain: f32) -> Vec<f32> {
    let at = |i: isize| clip.get(i as usize).copied().unwrap_or(0.0);
    let count = (clip.len() as f32 / speed) as usize;
    (0..count)
        .map(|n| {
            let t = n as f32 * speed;
            let i = t.floor() as isize;
            let f = t - i as f32;
            let (p0, p1, p2, p3) = (at(i - 1), at(i), at(i + 1), at(i + 2));
            let cubic = p1
                + 0.5
                    * f
                    * (p2 - p0
                        + f * (2.0 * p0 - 5.0 * p1 + 4.0 * p2 - p3
                            + f * (3.0 * (p1 - p2) + p3 - p0)));
            cubic * gain
        })
        .collect()
}

fn range(w: &mut Wobble, (lo, hi): (f32, f32)) -> f32 {
    w.range(f64::from(lo), f64::from(hi)) as f32
}

fn seconds(secs: f32) -> usize {
    (secs * RATE as f32) as usize
}

/// Adds `clip` into `track` from `start` on (what falls past its end is
/// dropped).
fn mix(track: &mut [f32], start: usize, clip: &[f32]) {
    for (out, s) in track.iter_mut().skip(start).zip(clip) {
        *out += s;
    }
}

/// The sound of `answer` (its digits; anything else is skipped) as a WAV:
/// 8 kHz, mono, 8-bit, about a second a digit.
pub fn wav(answer: &str, voice: Voice) -> Vec<u8> {
    let mut w = Wobble::new();
    let recordings: Vec<Vec<f32>> = voice.samples().iter().map(|r| recording(r)).collect();
    // The digits, each at its own speed and loudness, and where each starts.
    let mut spoken = Vec::new();
    let mut at = seconds(range(&mut w, LEAD_SECS));
    for digit in answer.chars().filter_map(|c| c.to_digit(10)) {
        let (speed, gain) = (range(&mut w, SPEED), range(&mut w, DIGIT_GAIN));
        let clip = resample(&recordings[digit as usize], speed, gain);
        let next = at + clip.len() + seconds(range(&mut w, GAP_SECS));
        spoken.push((at, clip));
        at = next;
    }
    let end = spoken.last().map_or(at, |(start, clip)| start + clip.len()) + seconds(TAIL_SECS);
    // An even count: the data chunk needs no pad byte.
    let mut track = vec![0.0f32; end + end % 2];
    // Babble: random digits backwards, end to end from the start to the
    // end, each at its own speed and low loudness.
    let mut at = 0;
    while at < track.len() {
        let digit = (w.bits() % 10) as usize;
        let (speed, gain) = (range(&mut w, SPEED), range(&mut w, BABBLE_GAIN));
        let mut clip = resample(&recordings[digit], speed, gain);
        clip.reverse();
        mix(&mut track, at, &clip);
        at += clip.len() + seconds(range(&mut w, (0.0, 0.12)));
    }
    // Hiss: white noise through a one-pole low-pass (y = (y + x) / 2),
    // which keeps a third of its power: uniform noise of amplitude a has
    // an RMS of a/√3, so a = 3 × HISS_RMS gives HISS_RMS after the filter.
    let mut y = 0.0f32;
    for s in track.iter_mut() {
        let x = range(&mut w, (-1.0, 1.0)) * 3.0 * HISS_RMS;
        y = 0.5 * (y + x);
        *s += y;
    }
    for (start, clip) in &spoken {
        mix(&mut track, *start, clip);
    }
    let pcm: Vec<u8> = track
        .iter()
        .map(|s| (128.0 + s * 127.0).round().clamp(0.0, 255.0) as u8)
        .collect();
    wav_file(&pcm)
}

/// 8-bit mono PCM at `RATE` in a WAV file: the RIFF header, the format,
/// the data.
fn wav_file(pcm: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(44 + pcm.len());
    let u32le = |n: usize| (n as u32).to_le_bytes();
    out.extend_from_slice(b"RIFF");
    out.extend_from_slice(&u32le(36 + pcm.len()));
    out.extend_from_slice(b"WAVEfmt ");
    out.extend_from_slice(&u32le(16));
    out.extend_from_slice(&1u16.to_le_bytes()); // PCM
    out.extend_from_slice(&1u16.to_le_bytes()); // mono
    out.extend_from_slice(&u32le(RATE)); // samples a second
    out.extend_from_slice(&u32le(RATE)); // bytes a second
    out.extend_from_slice(&1u16.to_le_bytes()); // bytes a sample
    out.extend_from_slice(&8u16.to_le_bytes()); // bits a sample
    out.extend_from_slice(b"data");
    out.extend_from_slice(&u32le(pcm.len()));
    out.extend_from_slice(pcm);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WAV as a browser reads it, checked field by field against what
    /// `wav` declares: the samples, from −1 to 1.
    fn read_wav(bytes: &[u8]) -> Vec<f32> {
        let u16le = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32le = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(u32le(4) as usize, bytes.len() - 8, "the RIFF size");
        assert_eq!(&bytes[8..16], b"WAVEfmt ");
        assert_eq!(u32le(16), 16, "a plain PCM format chunk");
        assert_eq!(
            (
                u16le(20),
                u16le(22),
                u32le(24),
                u32le(28),
                u16le(32),
                u16le(34)
            ),
            (1, 1, 8000, 8000, 1, 8),
            "PCM, mono, 8 kHz, 8,000 bytes a second, 1 byte a sample, 8 bits"
        );
        assert_eq!(&bytes[36..40], b"data");
        assert_eq!(u32le(40) as usize, bytes.len() - 44, "the data's size");
        bytes[44..]
            .iter()
            .map(|&b| (f32::from(b) - 128.0) / 128.0)
            .collect()
    }

    // A listener for the tests: it knows the clean recordings, not how
    // `wav` lays them out. Waveforms read at another speed stop matching
    // within a few samples, so it compares spectrograms instead: the
    // energy of 16 bands every 16 ms, in dB, nothing counted below 40 dB
    // under the loudest band. Each recording, read at five speeds, is
    // cross-correlated with the sound (Pearson's r over a whole window of
    // bands and frames) at every frame; among windows loud enough to be
    // speech, the best matches that do not overlap are the digits. On 150
    // answers in each voice (2026-12-01) it heard all 1,800 digits right;
    // with louder babble and hiss than now, the right recording's r was
    // at least 0.06 above any other digit's there (English five and nine
    // are the closest pair).

    const FRAME: usize = 128;
    const HOP: usize = 128;
    /// Band edges in DFT bins of 62.5 Hz: 125 Hz to 3.6 kHz, wider upwards.
    const EDGES: [usize; 17] = [2, 3, 4, 5, 6, 8, 10, 12, 14, 17, 20, 24, 28, 33, 39, 46, 58];
    const BANDS: usize = EDGES.len() - 1;
    const FLOOR_DB: f32 = 40.0;
    const SPEEDS: [f32; 5] = [0.92, 0.96, 1.0, 1.04, 1.08];

    /// The spectrogram of `x`, frame after frame of `BANDS` values in dB,
    /// and each frame's loudness (its total energy in dB).
    fn spectrogram(x: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let tau = std::f32::consts::TAU;
        let (cos, sin): (Vec<f32>, Vec<f32>) = (0..FRAME)
            .map(|m| {
                let a = tau * m as f32 / FRAME as f32;
                (a.cos(), a.sin())
            })
            .unzip();
        let window: Vec<f32> = (0..FRAME)
            .map(|n| 0.5 - 0.5 * (tau * n as f32 / FRAME as f32).cos())
            .collect();
        let (mut bands, mut loudness) = (Vec::new(), Vec::new());
        let mut start = 0;
        while start + FRAME <= x.len() {
            let frame: Vec<f32> = (0..FRAME).map(|n| x[start + n] * window[n]).collect();
            let mut total = 1e-9;
            for b in 0..BANDS {
                let mut energy = 1e-9;
                for k in EDGES[b]..EDGES[b + 1] {
                    let (mut re, mut im) = (0.0, 0.0);
                    for (n, s) in frame.iter().enumerate() {
                        re += s * cos[k * n % FRAME];
                        im -= s * sin[k * n % FRAME];
                    }
                    energy += re * re + im * im;
                }
                total += energy;
                bands.push(10.0 * energy.log10());
            }
            loudness.push(10.0 * f32::log10(total));
            start += HOP;
        }
        let top = bands.iter().copied().fold(f32::MIN, f32::max);
        for db in &mut bands {
            *db = db.max(top - FLOOR_DB);
        }
        (bands, loudness)
    }

    /// A recording's spectrogram at one speed, less its mean, and its norm.
    struct Template {
        digit: usize,
        frames: usize,
        centred: Vec<f32>,
        norm: f32,
    }

    fn templates(voice: Voice) -> &'static [Template] {
        use std::sync::OnceLock;
        static CACHE: [OnceLock<Vec<Template>>; 2] = [OnceLock::new(), OnceLock::new()];
        CACHE[voice as usize].get_or_init(|| {
            let mut out = Vec::new();
            for (digit, r) in voice.samples().iter().enumerate() {
                for speed in SPEEDS {
                    let (bands, _) = spectrogram(&resample(&recording(r), speed, 1.0));
                    let mean = bands.iter().sum::<f32>() / bands.len() as f32;
                    let centred: Vec<f32> = bands.iter().map(|b| b - mean).collect();
                    let norm = centred.iter().map(|c| c * c).sum::<f32>().sqrt();
                    let frames = bands.len() / BANDS;
                    out.push(Template {
                        digit,
                        frames,
                        centred,
                        norm,
                    });
                }
            }
            out
        })
    }

    /// The digits heard in `sound`, `count` of them, in order.
    fn listen(sound: &[f32], voice: Voice, count: usize) -> String {
        let (heard, loudness) = spectrogram(sound);
        let loudest = loudness.iter().copied().fold(f32::MIN, f32::max);
        // Sums of values and of squares up to each frame: each window's
        // mean and spread in two subtractions.
        let (mut sum, mut squares) = (vec![0.0f64], vec![0.0f64]);
        for frame in heard.chunks(BANDS) {
            sum.push(sum.last().unwrap() + frame.iter().map(|&v| f64::from(v)).sum::<f64>());
            let sq = frame.iter().map(|&v| f64::from(v * v)).sum::<f64>();
            squares.push(squares.last().unwrap() + sq);
        }
        let mut found = Vec::new(); // (r, first frame, frames, digit)
        for t in templates(voice) {
            for start in 0..loudness.len().saturating_sub(t.frames) {
                let end = start + t.frames;
                // Speech, not babble: the window's loudest frame is within
                // 10 dB of the loudest of all.
                let peak = loudness[start..end]
                    .iter()
                    .copied()
                    .fold(f32::MIN, f32::max);
                if peak < loudest - 10.0 {
                    continue;
                }
                let n = (t.frames * BANDS) as f64;
                let (s, sq) = (sum[end] - sum[start], squares[end] - squares[start]);
                let spread = (sq - s * s / n).max(1e-9).sqrt() as f32;
                // The template's values add up to 0: its dot product with
                // the window is the window's, less its mean.
                let window = &heard[start * BANDS..end * BANDS];
                let dot: f32 = t.centred.iter().zip(window).map(|(a, b)| a * b).sum();
                found.push((dot / (t.norm * spread), start, t.frames, t.digit));
            }
        }
        found.sort_by(|a, b| b.0.total_cmp(&a.0));
        let mut taken: Vec<(f32, usize, usize, usize)> = Vec::new();
        for m in found {
            let overlaps = taken.iter().any(|t| {
                let shared = (t.1 + t.2).min(m.1 + m.2).saturating_sub(t.1.max(m.1));
                shared * 4 > t.2.min(m.2)
            });
            if !overlaps {
                taken.push(m);
            }
            if taken.len() == count {
                break;
            }
        }
        taken.sort_by_key(|t| t.1);
        taken.iter().map(|t| char::from(b'0' + t.3 as u8)).collect()
    }

    #[test]
    fn the_wav_is_a_riff_wave_of_the_declared_length_and_a_second_a_digit() {
        for voice in [Voice::Japanese, Voice::English] {
            let bytes = wav("038475", voice);
            let samples = read_wav(&bytes);
            let secs = samples.len() as f32 / RATE as f32;
            assert!((4.0..9.0).contains(&secs), "{secs} s");
        }
        let uri = data_uri(&answer(), Voice::Japanese);
        assert!(uri.starts_with("data:audio/wav;base64,UklGR"), "RIFF");
        // The inline sound is what weighs on ①: well under 100 KB.
        assert!(uri.len() < 100_000, "{} bytes", uri.len());
    }

    /// Whether the WAV `bytes` says `answer`, digit by digit, in order.
    fn says(bytes: &[u8], voice: Voice, answer: &str) -> bool {
        listen(&read_wav(bytes), voice, answer.len()) == answer
    }

    #[test]
    fn the_answers_digits_are_heard_in_order_in_either_voice() {
        for voice in [Voice::Japanese, Voice::English] {
            // Every digit, then a fresh answer.
            for said in ["012345", "678909", &answer()] {
                let sound = wav(said, voice);
                let heard = listen(&read_wav(&sound), voice, said.len());
                assert_eq!(heard, said, "{voice:?}");
            }
        }
    }

    #[test]
    fn a_wav_of_other_digits_or_another_order_does_not_pass() {
        let sound = wav("135792", Voice::Japanese);
        assert!(says(&sound, Voice::Japanese, "135792"));
        assert!(!says(&sound, Voice::Japanese, "135793"), "one digit other");
        assert!(!says(&sound, Voice::Japanese, "153792"), "two swapped");
        let english = wav("135792", Voice::English);
        assert!(!says(&english, Voice::Japanese, "135792"), "another voice");
    }

    #[test]
    fn the_same_digits_never_sound_the_same_and_the_voice_stands_above_the_rest() {
        let (a, b) = (
            wav("555555", Voice::Japanese),
            wav("555555", Voice::Japanese),
        );
        assert_ne!(a, b);
        let samples = read_wav(&a);
        // Loudness in 50 ms windows: the first 0.3 s is always before the
        // first digit (babble and hiss alone).
        let rms = |w: &[f32]| (w.iter().map(|s| s * s).sum::<f32>() / w.len() as f32).sqrt();
        let windows: Vec<f32> = samples.chunks(400).map(rms).collect();
        let background = windows[..6].iter().copied().fold(0.0, f32::max);
        let loudest = windows.iter().copied().fold(0.0, f32::max);
        let db = 20.0 * (loudest / background).log10();
        assert!(db > 15.0, "the digits stand only {db:.1} dB above the rest");
        assert!(background > 0.005, "there is background: {background}");
    }

    #[test]
    fn every_recording_is_a_short_8_khz_wav() {
        let mut total = 0;
        for voice in [Voice::Japanese, Voice::English] {
            for (digit, r) in voice.samples().iter().enumerate() {
                let samples = read_wav(r);
                let secs = samples.len() as f32 / RATE as f32;
                assert!((0.25..0.6).contains(&secs), "{voice:?} {digit}: {secs} s");
                let peak = samples.iter().fold(0f32, |m, s| m.max(s.abs()));
                assert!((0.85..0.95).contains(&peak), "{voice:?} {digit}: {peak}");
                assert_eq!(recording(r).len(), samples.len());
                total += r.len();
            }
        }
        assert!(total < 80_000, "the recordings take {total} bytes");
    }

    #[test]
    fn answers_are_six_uniform_digits() {
        let mut counts = [0usize; 10];
        for _ in 0..2000 {
            let a = answer();
            assert_eq!(a.len(), LENGTH);
            for b in a.bytes() {
                assert!(b.is_ascii_digit(), "{a}");
                counts[usize::from(b - b'0')] += 1;
            }
        }
        // 12,000 draws over 10 digits: 1,200 expected each.
        assert!(
            counts.iter().all(|c| (1000..1400).contains(c)),
            "{counts:?}"
        );
    }
}
